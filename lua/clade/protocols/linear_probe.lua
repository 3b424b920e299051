-- linear_probe: a ridge classifier on k labelled images per class, closed form through
-- LAPACK: W = (XᵀX + λI)⁻¹ XᵀY with X the centred L2-normalised features and Y one-hot in
-- {-1, +1} (scikit-learn's RidgeClassifier encoding); predict the largest score.
local common = require "clade.protocols.common"

return {
  needs_text = false,
  fields = { shots = "table", trials = "number", lambda = "number", sampler = "string", seed = "number" },
  check = function(opts)
    common.check_list("linear_probe", "shots", opts.shots, "number")
    common.check_sampler("linear_probe", opts, "fresh")
    if opts.lambda ~= nil and opts.lambda <= 0 then error("linear_probe: lambda must be > 0", 0) end
  end,
  validate = function(opts, data) common.check_shots("linear_probe", opts.shots or { 5 }, data) end,
  run = function(ctx, opts)
    local T = ctx.tensor
    local shots, trials, lam = opts.shots or { 5 }, opts.trials or 5, opts.lambda or 1.0
    local kind = opts.sampler or "fresh"
    local sample = common.sampler(ctx, kind, opts.seed)
    local feats = ctx.features:normalize()
    local C = #ctx.classes
    for _, k in ipairs(shots) do
      local results, preds, support = common.run_trials(sample, trials, k, function(sup, qry)
        local sidx, qidx = {}, {}
        for i, s in ipairs(sup) do sidx[i] = s[1] end
        for i, q in ipairs(qry) do qidx[i] = q[1] end
        local X = feats:rows(sidx)
        local mu = X:mean()
        local Y = T.new(#sup, C, -1)
        for i, s in ipairs(sup) do Y:set(i, s[2], 1) end
        local W = T.ridge(X:sub(mu), Y, lam)
        return feats:rows(qidx):sub(mu):matmul(W):argmax()
      end)
      ctx.emit { text_type = "", shots = k, params = { trials = trials, lambda = lam, sampler = kind, seed = opts.seed },
                 results = results, predictions = preds, support = support }
    end
  end,
}
