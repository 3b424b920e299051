-- few_shot: SimpleShot as BioCLIP evaluates it. L2-normalise, CL2N (subtract the support
-- mean, L2-normalise support and queries), nearest class centroid by Euclidean distance.
-- Accuracy per trial is over all queries; the aggregate std is the population std.
local common = require "clade.protocols.common"

return {
  needs_text = false,
  fields = { shots = "table", trials = "number", sampler = "string", seed = "number" },
  check = function(opts)
    common.check_list("few_shot", "shots", opts.shots, "number")
    local s = opts.sampler
    if s ~= nil and s ~= "bioclip" and s ~= "fresh" then
      error("few_shot: sampler must be \"bioclip\" or \"fresh\", not \"" .. tostring(s) .. "\"", 0)
    end
  end,
  run = function(ctx, opts)
    local shots, trials = opts.shots or { 1, 5 }, opts.trials or 5
    local kind = opts.sampler or "bioclip"
    local sample = common.sampler(ctx, kind, opts.seed)
    local feats = ctx.features:normalize()
    for _, k in ipairs(shots) do
      local accs, results, preds, support_rec = {}, {}, {}, {}
      for trial = 0, trials - 1 do
        local support, queries = common.split(sample(trial), k)
        for _, s in ipairs(support) do
          support_rec[#support_rec + 1] = { trial = trial, class = s[2], example = s[1] }
        end
        local pred_cls = common.simpleshot(feats, support, queries, #ctx.classes)
        local right = 0
        for i, q in ipairs(queries) do
          local p = pred_cls[i]
          if p == q[2] then right = right + 1 end
          preds[#preds + 1] = { trial = trial, example = q[1], prediction = p }
        end
        local acc = #queries > 0 and right / #queries or 0
        accs[#accs + 1] = acc
        results[#results + 1] = { trial = trial, metric = "top1", value = acc }
      end
      local mean, std = common.mean_std(accs)
      results[#results + 1] = { metric = "top1", value = mean }
      results[#results + 1] = { metric = "top1_std", value = std }
      ctx.emit { text_type = "", shots = k, params = { trials = trials, sampler = kind, seed = opts.seed },
                 results = results, predictions = preds, support = support_rec }
    end
  end,
}
