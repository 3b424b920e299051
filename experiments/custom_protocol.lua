-- A protocol written in the experiment file itself: nearest class mean by cosine, with k
-- labelled images per class, on clade.tensor. No C needed.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"
local T = clade.tensor

local cosine_ncm = protocol "cosine_ncm" {
  fields = { shots = "number", trials = "number" },
  run = function(ctx, opts)
    local k, trials = opts.shots or 1, opts.trials or 3
    local feats = ctx.features:normalize()
    local accs, results = {}, {}
    for trial = 0, trials - 1 do
      local rng = clade.core.pyrandom(trial)
      local lists = {}
      for c = 1, #ctx.classes do lists[c] = {} end
      for i, c in ipairs(ctx.labels) do table.insert(lists[c], i) end
      local cents, queries = {}, {}
      for c, l in ipairs(lists) do
        rng:shuffle(l)
        local sup = {}
        for i, ex in ipairs(l) do
          if i <= k then sup[#sup + 1] = ex else queries[#queries + 1] = { ex, c } end
        end
        cents[c] = feats:rows(sup):mean():normalize()
      end
      local qidx = {}
      for i, q in ipairs(queries) do qidx[i] = q[1] end
      local pred = feats:rows(qidx):matmul(T.cat(cents), true):argmax()
      local right = 0
      for i, q in ipairs(queries) do if pred[i] == q[2] then right = right + 1 end end
      accs[#accs + 1] = right / #queries
      results[#results + 1] = { trial = trial, metric = "top1", value = right / #queries }
    end
    local mean = 0
    for _, a in ipairs(accs) do mean = mean + a / #accs end
    results[#results + 1] = { metric = "top1", value = mean }
    ctx.emit { shots = k, results = results }
  end,
}

model "sample-clip" { path = sample .. "/model" }
dataset "rare-sample" { root = sample .. "/data/rare_sample" }

experiment "custom-ncm" {
  models = { "sample-clip" }, datasets = { "rare-sample" },
  protocol = cosine_ncm { shots = 2, trials = 3 },
}
