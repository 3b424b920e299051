-- few_shot: SimpleShot as BioCLIP evaluates it. L2-normalise, CL2N (subtract the support
-- mean, L2-normalise support and queries), nearest class centroid by Euclidean distance.
-- Accuracy per trial is over all queries; the aggregate std is the population std.
local common = require "clade.protocols.common"

return {
  needs_text = false,
  fields = { shots = "table", trials = "number", sampler = "string", seed = "number" },
  check = function(opts)
    common.check_list("few_shot", "shots", opts.shots, "number")
    common.check_sampler("few_shot", opts, "bioclip")
  end,
  validate = function(opts, data) common.check_shots("few_shot", opts.shots or { 1, 5 }, data) end,
  run = function(ctx, opts)
    local shots, trials = opts.shots or { 1, 5 }, opts.trials or 5
    local kind = opts.sampler or "bioclip"
    -- one sampler for all shot counts: BioCLIP's shuffles carry over from 1-shot to 5-shot
    local sample = common.sampler(ctx, kind, opts.seed)
    local feats = ctx.features:normalize()
    for _, k in ipairs(shots) do
      local results, preds, support = common.run_trials(sample, trials, k, function(sup, qry)
        return (common.simpleshot(feats, sup, qry, #ctx.classes))
      end)
      ctx.emit { text_type = "", shots = k, params = { trials = trials, sampler = kind, seed = opts.seed },
                 results = results, predictions = preds, support = support }
    end
  end,
}
