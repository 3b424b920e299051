-- zero_shot: BioCLIP's template-averaged class embeddings, cosine scores, top-1/3/5.
local common = require "clade.protocols.common"
local templates = require "clade.templates"

return {
  needs_text = true,
  fields = { text_types = "table", templates = "any" },
  check = function(opts)
    local tt = opts.text_types
    if tt ~= nil and type(tt) ~= "table" then error("zero_shot: text_types must be a list or a mixture{...}", 0) end
    local text_types = require "clade.text_types"
    for _, spec in ipairs(tt and not tt.mixture and tt or {}) do
      if type(spec) == "string" then text_types.get(spec) end -- unknown names fail here, with the list
    end
  end,
  -- before any encoding: every class of the dataset has a name in every text type asked
  validate = function(opts, data)
    templates.get(opts.templates)
    local text_types = require "clade.text_types"
    local specs = opts.text_types or { data.has_taxonomy and "taxonomic_common" or "asis" }
    if specs.mixture then specs = { specs } end
    for _, spec in ipairs(specs) do
      for _, part in ipairs(type(spec) == "table" and spec.mixture or { { type = spec } }) do
        text_types.class_texts(part.type, data.classes, data.dataset, data.has_taxonomy)
      end
    end
  end,
  run = function(ctx, opts)
    local tmpl = templates.get(opts.templates)
    local specs = opts.text_types or { ctx.has_taxonomy and "taxonomic_common" or "asis" }
    if specs.mixture then specs = { specs } end
    local img = ctx.features:normalize()
    for _, spec in ipairs(specs) do
      local cls, name = common.text_spec_embeddings(ctx, spec, tmpl)
      local scores = img:matmul(cls, true)
      local top = scores:topk(5)
      local hits = { 0, 0, 0 }
      local preds = {}
      for i, row in ipairs(top) do
        local y = ctx.labels[i]
        for r, k in ipairs({ 1, 3, 5 }) do
          for q = 1, math.min(k, #row) do
            if row[q] == y then hits[r] = hits[r] + 1; break end
          end
        end
        local hit -- where the truth ranked among the top 5 (nil: below them)
        for q = 1, #row do
          if row[q] == y then hit = q; break end
        end
        preds[i] = { example = i, prediction = row[1], hit = hit }
      end
      local n = #ctx.labels
      ctx.emit {
        text_type = name, shots = 0,
        params = { templates = type(opts.templates) == "string" and opts.templates or
                   (opts.templates and "custom" or "bioclip81"), n_templates = #tmpl },
        results = { { metric = "top1", value = hits[1] / n }, { metric = "top3", value = hits[2] / n },
                    { metric = "top5", value = hits[3] / n } },
        predictions = preds,
      }
    end
  end,
}
