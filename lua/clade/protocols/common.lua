-- Shared pieces of the built-in protocols: class embeddings from text types and templates,
-- the few-shot samplers, and summary statistics.
local core = require "clade.core"
local T = core.tensor
local text_types = require "clade.text_types"
local templates = require "clade.templates"
local M = {}

-- BioCLIP's zero-shot classifier for one text type: per class, the mean over templates of
-- L2-normalised text embeddings, renormalised. Returns tensor [C, D].
-- The prompts of class names: class by class, every template filled (what zero-shot embeds).
function M.prompts(names, tmpl)
  local prompts = {}
  for _, n in ipairs(names) do
    for _, t in ipairs(tmpl) do prompts[#prompts + 1] = templates.format(t, n) end
  end
  return prompts
end

-- The zero-shot prompts of a manifest's classes (nclasses of them evenly spaced, < 1: all)
-- for one text type and template set; clade bench's text measure embeds these. Returns the
-- prompts, the number of classes used and of templates.
function M.manifest_prompts(manifest_path, type_name, template_set, nclasses)
  local man = core.manifest(manifest_path)
  local nc = #man.classes
  local use = tonumber(nclasses) or 0
  if use < 1 or use > nc then use = nc end
  local classes = {}
  for i = 0, use - 1 do classes[i + 1] = man.classes[i * nc // use + 1] end
  local tmpl = templates.get(template_set)
  local names = text_types.class_texts(type_name, classes, manifest_path, man.has_taxonomy)
  return M.prompts(names, tmpl), use, #tmpl
end

function M.class_embeddings(ctx, type_name, tmpl)
  local names = text_types.class_texts(type_name, ctx.classes, ctx.dataset, ctx.has_taxonomy)
  local prompts = M.prompts(names, tmpl)
  local emb = ctx.embed_texts(prompts):normalize()
  local out = emb:block_mean(#tmpl):normalize()
  return out, names
end

-- A text spec (a type name or a mixture) -> class embeddings and its stored name.
function M.text_spec_embeddings(ctx, spec, tmpl)
  if type(spec) == "string" then
    return (M.class_embeddings(ctx, spec, tmpl)), spec
  end
  local sum
  for _, p in ipairs(spec.mixture) do
    local e = M.class_embeddings(ctx, p.type, tmpl):mul(p.weight)
    sum = sum and sum:add(e) or e
  end
  return sum:normalize(), spec.name
end

-- Per-class lists of example indices (1-based rows), classes in order of first appearance,
-- each list in manifest order.
function M.class_lists(ctx)
  local lists = {}
  for c = 1, #ctx.classes do lists[c] = {} end
  for i, c in ipairs(ctx.labels) do table.insert(lists[c], i) end
  return lists
end

-- The samplers. "bioclip": per trial n, random.seed(n) then random.shuffle of each class's
-- list in place, cumulative across trials and shot counts (as BioCLIP's evaluation does).
-- "fresh": each trial starts from manifest order, seeded seed + n.
function M.sampler(ctx, kind, seed)
  local lists = M.class_lists(ctx)
  return function(trial)
    local cur = lists
    if kind == "fresh" then
      cur = M.class_lists(ctx)
      local rng = core.pyrandom((seed or 0) + trial)
      for _, l in ipairs(cur) do rng:shuffle(l) end
    else
      local rng = core.pyrandom(trial)
      for _, l in ipairs(cur) do rng:shuffle(l) end
    end
    return cur
  end
end

function M.split(lists, k)
  local support, queries = {}, {}
  for c, l in ipairs(lists) do
    for i, ex in ipairs(l) do
      if i <= k then support[#support + 1] = { ex, c } else queries[#queries + 1] = { ex, c } end
    end
  end
  return support, queries
end

-- SimpleShot as BioCLIP runs it, on L2-normalised features: CL2N (subtract the support mean,
-- L2-normalise support and queries), class centroids = mean of a class's support features,
-- nearest centroid by Euclidean distance. support/queries are lists of {example, class}.
-- Returns the predicted class per query and the distance matrix [queries, classes present].
function M.simpleshot(feats, support, queries, nclasses)
  local sidx, qidx = {}, {}
  for i, s in ipairs(support) do sidx[i] = s[1] end
  for i, q in ipairs(queries) do qidx[i] = q[1] end
  local S, Q = feats:rows(sidx), feats:rows(qidx)
  local mu = S:mean()
  S, Q = S:sub(mu):normalize(), Q:sub(mu):normalize()
  local members = {}
  for i, s in ipairs(support) do
    members[s[2]] = members[s[2]] or {}
    table.insert(members[s[2]], i)
  end
  local cent, cls_of = {}, {}
  for c = 1, nclasses do
    if members[c] then cent[#cent + 1] = S:rows(members[c]):mean(); cls_of[#cent] = c end
  end
  local dist = Q:cdist(T.cat(cent))
  local pred = dist:argmin()
  for i, p in ipairs(pred) do pred[i] = cls_of[p] end
  return pred, dist, mu
end

-- The trial loop shared by the support-set protocols: for each trial, split the sampler's
-- lists into k support images per class and the rest as queries, ask classify(support,
-- queries) for one predicted class per query, and score it. Returns results (per trial and
-- the aggregate mean and population std), predictions and the support records.
function M.run_trials(sample, trials, k, classify)
  local accs, results, preds, support_rec = {}, {}, {}, {}
  for trial = 0, trials - 1 do
    local support, queries = M.split(sample(trial), k)
    for _, s in ipairs(support) do
      support_rec[#support_rec + 1] = { trial = trial, class = s[2], example = s[1] }
    end
    local pred = classify(support, queries)
    local right = 0
    for i, q in ipairs(queries) do
      if pred[i] == q[2] then right = right + 1 end
      preds[#preds + 1] = { trial = trial, example = q[1], prediction = pred[i] }
    end
    local acc = #queries > 0 and right / #queries or 0
    accs[#accs + 1] = acc
    results[#results + 1] = { trial = trial, metric = "top1", value = acc }
  end
  local mean, std = M.mean_std(accs)
  results[#results + 1] = { metric = "top1", value = mean }
  results[#results + 1] = { metric = "top1_std", value = std }
  return results, preds, support_rec
end

-- mean and population standard deviation (ddof = 0, numpy's default)
function M.mean_std(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local mean = s / n
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - mean) ^ 2 end
  return mean, math.sqrt(v / n)
end

-- Before any encoding: classes with fewer images than a shot count asked get a warning with
-- their count (an error under --strict). data: { dataset, classes (with n_images) }.
function M.check_shots(name, shots, data)
  local seen = {}
  for _, k in ipairs(shots) do
    if not seen[k] then
      seen[k] = true
      local short, example = 0, nil
      for _, c in ipairs(data.classes) do
        if c.n_images < k then
          short = short + 1
          example = example or string.format("'%s' has %d", c.label, c.n_images)
        end
      end
      if short > 0 then
        require("clade.core").warn(string.format("dataset '%s': %d of %d classes have fewer than %d images for %s's %d shots (%s)",
                                                 data.dataset, short, #data.classes, k, name, k, example))
      end
    end
  end
end

-- sampler: "bioclip" or "fresh"; seed is read by "fresh" only, so elsewhere it is an error
function M.check_sampler(name, opts, default)
  local s = opts.sampler or default
  if s ~= "bioclip" and s ~= "fresh" then
    error(name .. ": sampler must be \"bioclip\" or \"fresh\", not \"" .. tostring(s) .. "\"", 0)
  end
  if opts.seed ~= nil and s ~= "fresh" then
    error(name .. ": seed is used by sampler = \"fresh\" only (the bioclip sampler seeds each trial with its number)", 0)
  end
end

function M.check_list(name, field, v, elem)
  if v ~= nil and (type(v) ~= "table" or #v == 0) then
    error(string.format("%s: %s must be a non-empty list", name, field), 0)
  end
  for i, x in ipairs(v or {}) do
    if type(x) ~= elem then error(string.format("%s: %s[%d] must be a %s", name, field, i, elem), 0) end
  end
end

return M
