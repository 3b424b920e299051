-- linear_probe: a ridge classifier on k labelled images per class, closed form through
-- LAPACK: W = (XᵀX + λI)⁻¹ XᵀY with X the centred L2-normalised features and Y one-hot in
-- {-1, +1} (scikit-learn's RidgeClassifier encoding); predict the largest score.
local common = require "clade.protocols.common"

return {
  needs_text = false,
  fields = { shots = "table", trials = "number", lambda = "number", sampler = "string", seed = "number" },
  check = function(opts)
    common.check_list("linear_probe", "shots", opts.shots, "number")
    if opts.lambda ~= nil and opts.lambda <= 0 then error("linear_probe: lambda must be > 0", 0) end
  end,
  run = function(ctx, opts)
    local T = ctx.tensor
    local shots, trials, lam = opts.shots or { 5 }, opts.trials or 5, opts.lambda or 1.0
    local kind = opts.sampler or "fresh"
    local sample = common.sampler(ctx, kind, opts.seed)
    local feats = ctx.features:normalize()
    local C = #ctx.classes
    for _, k in ipairs(shots) do
      local accs, results, preds = {}, {}, {}
      for trial = 0, trials - 1 do
        local support, queries = common.split(sample(trial), k)
        local sidx, qidx = {}, {}
        for i, s in ipairs(support) do sidx[i] = s[1] end
        for i, q in ipairs(queries) do qidx[i] = q[1] end
        local X = feats:rows(sidx)
        local mu = X:mean()
        X = X:sub(mu)
        local Y = T.new(#support, C, -1)
        for i, s in ipairs(support) do Y:set(i, s[2], 1) end
        local W = T.ridge(X, Y, lam)
        local pred = feats:rows(qidx):sub(mu):matmul(W):argmax()
        local right = 0
        for i, q in ipairs(queries) do
          if pred[i] == q[2] then right = right + 1 end
          preds[#preds + 1] = { trial = trial, example = q[1], prediction = pred[i] }
        end
        local acc = #queries > 0 and right / #queries or 0
        accs[#accs + 1] = acc
        results[#results + 1] = { trial = trial, metric = "top1", value = acc }
      end
      local mean, std = common.mean_std(accs)
      results[#results + 1] = { metric = "top1", value = mean }
      results[#results + 1] = { metric = "top1_std", value = std }
      ctx.emit { text_type = "", shots = k, params = { trials = trials, lambda = lam, sampler = kind },
                 results = results, predictions = preds }
    end
  end,
}
