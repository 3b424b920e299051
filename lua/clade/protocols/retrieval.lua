-- retrieval: cross-modal retrieval as CLIBD (BIOSCAN-CLIP) evaluates it. Each query row (an
-- image, a barcode, or both averaged) is matched against a labelled key set by L2-normalised
-- cosine, exact top-k (ties to the lower key index); per query split and taxonomic rank:
-- micro_top{k} (share of queries whose label is among the top-k keys' labels) and
-- macro_top{k} (that share per true label, averaged over the labels present), exactly as
-- CLIBD's top_k_micro_accuracy / top_k_macro_accuracy. Splits come from the manifest's
-- `split` column; the key set is every row of the key splits, in manifest order. Each cell
-- is stored with the retrieved key rows of every query.
local core = require "clade.core"
local common = require "clade.protocols.common"

local DEFAULTS = {
  query = "image", key = "dna", queries = { "test_seen", "test_unseen" },
  keys = { "seen_keys", "val_unseen_keys", "test_unseen_keys" },
  ranks = { "order", "family", "genus", "species" }, k = { 1, 3, 5 },
}

local function opt(opts, name) return opts[name] or DEFAULTS[name] end

-- "image+dna" -> { "image", "dna" }: CLIBD's averaged feature
local function parts(modality) 
  local out = {}
  for p in modality:gmatch("[^+]+") do out[#out + 1] = p end
  return out
end

-- Rows (1-based) whose split is one of `names`, in manifest order; errors name the dataset,
-- the column and the split that has no row.
local function split_rows(ctx, names, what)
  local split = ctx.column("split")
  local want, count, rows = {}, {}, {}
  for _, n in ipairs(names) do want[n] = true; count[n] = 0 end
  for i, s in ipairs(split) do
    if want[s] then rows[#rows + 1] = i; count[s] = count[s] + 1 end
  end
  for _, n in ipairs(names) do
    if count[n] == 0 then
      error(string.format("retrieval: dataset '%s' (%s): %s split '%s' has no rows in column 'split'",
                          ctx.dataset, ctx.manifest or "manifest", what, n), 0)
    end
  end
  return rows
end

-- Features of a modality (or an averaged pair) for rows: raw for one modality; for "a+b" the
-- mean of the L2-normalised features of each (CLIBD's averaged_feature).
local function features(ctx, modality, rows)
  local ps = parts(modality)
  if #ps == 1 then return ctx.row_features(ps[1], rows) end
  local sum
  for _, p in ipairs(ps) do
    local f = ctx.row_features(p, rows):normalize()
    sum = sum and sum:add(f) or f
  end
  return sum:mul(1 / #ps)
end

local function check_modality(field, m)
  if type(m) ~= "string" or m == "" then error("retrieval: " .. field .. " must be a modality name", 0) end
  for _, p in ipairs(parts(m)) do
    local ok, why = pcall(core.modality_column, p)
    if not ok then
      error(string.format("retrieval: %s = %q: %s; join two with '+' (\"image+dna\")", field, m, why), 0)
    end
  end
end

return {
  needs_text = false,
  fields = { query = "string", key = "string", queries = "table", keys = "table", ranks = "table", k = "table" },
  check = function(opts)
    check_modality("query", opt(opts, "query"))
    check_modality("key", opt(opts, "key"))
    common.check_list("retrieval", "queries", opts.queries, "string")
    common.check_list("retrieval", "keys", opts.keys, "string")
    common.check_list("retrieval", "ranks", opts.ranks, "string")
    common.check_list("retrieval", "k", opts.k, "number")
    for i, k in ipairs(opts.k or {}) do
      if k < 1 or k ~= math.floor(k) or k > 1000 then
        error(string.format("retrieval: k[%d] = %s must be a whole number in 1..1000", i, tostring(k)), 0)
      end
    end
  end,
  -- before any encoding: the columns exist and every query and key split has rows
  validate = function(opts, ctx)
    ctx.column("split")
    for _, r in ipairs(opt(opts, "ranks")) do ctx.column(r) end
    for _, m in ipairs({ opt(opts, "query"), opt(opts, "key") }) do
      for _, p in ipairs(parts(m)) do
        local col = core.modality_column(p) -- images: the manifest's filepath (or image_file)
        if col and p ~= "image" then ctx.column(col) end
      end
    end
    split_rows(ctx, opt(opts, "keys"), "key")
    for _, q in ipairs(opt(opts, "queries")) do split_rows(ctx, { q }, "query") end
  end,
  run = function(ctx, opts)
    local qmod, kmod = opt(opts, "query"), opt(opts, "key")
    local ranks, ks = opt(opts, "ranks"), opt(opts, "k")
    local kmax = 0
    for _, k in ipairs(ks) do kmax = math.max(kmax, k) end
    local key_rows = split_rows(ctx, opt(opts, "keys"), "key")
    local K = features(ctx, kmod, key_rows)
    local params = { queries = opt(opts, "queries"), keys = opt(opts, "keys"), k = ks, n_keys = #key_rows }
    for _, qsplit in ipairs(opt(opts, "queries")) do
      local q_rows = split_rows(ctx, { qsplit }, "query")
      local top = features(ctx, qmod, q_rows):cosine_topk(K, kmax) -- per query: key indices, 1-based
      local preds = {}
      for i, row in ipairs(top) do
        local got = {}
        for p, j in ipairs(row) do got[p] = key_rows[j] end
        preds[i] = { example = q_rows[i], retrieved = got }
      end
      for _, rank in ipairs(ranks) do
        local labels = ctx.column(rank)
        local ql, kl = {}, {}
        for i, r in ipairs(q_rows) do ql[i] = labels[r] end
        for i, r in ipairs(key_rows) do kl[i] = labels[r] end
        local results = {}
        for _, k in ipairs(ks) do
          local micro, macro = core.retrieval_accuracy(ql, kl, top, k)
          results[#results + 1] = { metric = "micro_top" .. k, value = micro }
          results[#results + 1] = { metric = "macro_top" .. k, value = macro }
        end
        ctx.emit { query = qmod, key = kmod, split = qsplit, rank = rank, params = params,
                   n_examples = #q_rows, results = results, predictions = preds }
      end
    end
  end,
}
