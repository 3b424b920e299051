-- Shards: the jobs of a run split into N disjoint parts (`clade run --shard I/N`), so that N
-- processes, one per Slurm array task, do together exactly the jobs of one run. The split
-- depends only on the plan (job keys and the images each encodes), never on timing or on
-- the shard asking, so every shard computes the same one.
local core = require "clade.core"
local M = {}

-- plan: list of { key, model, dataset, images } (runner.plan). Returns the set of keys of
-- shard `index` (0-based) of `count`, how many they are, and the plan's text (one job a
-- line, in run order: key, tab, images).
-- Balanced by estimated cost, greedily from the costliest job (ties by key): each job goes to
-- the shard it leaves least loaded, where a job costs the images its model encodes on its
-- dataset, unless that shard already encodes them for another job (then 1: the protocol).
function M.split(plan, index, count)
  local order = {}
  for i, j in ipairs(plan) do order[i] = j end
  table.sort(order, function(a, b)
    if a.images ~= b.images then return a.images > b.images end
    return a.key < b.key
  end)
  local load, units = {}, {}
  for s = 0, count - 1 do load[s], units[s] = 0, {} end
  local mine, n, lines = {}, 0, {}
  for _, j in ipairs(order) do
    local unit = j.model .. "\31" .. j.dataset
    local best, best_load
    for s = 0, count - 1 do
      local l = load[s] + (units[s][unit] and 1 or j.images + 1)
      if not best or l < best_load then best, best_load = s, l end
    end
    load[best], units[best][unit] = best_load, true
    if best == index then mine[j.key], n = true, n + 1 end
  end
  for i, j in ipairs(plan) do lines[i] = j.key .. "\t" .. j.images end
  return mine, n, table.concat(lines, "\n")
end

-- For a shard run: records the plan's hash and the shard's job count with the run, and
-- returns the set of job keys to do. nil when the run is not a shard (every job is ours).
-- plan_fn() lists the plan (it reads every manifest: only shards pay for it).
function M.select(plan_fn)
  local index, count = core.shard()
  if not index then return nil end
  local plan = plan_fn()
  local mine, n, text = M.split(plan, index, count)
  local hash = core.record_plan(text, n)
  core.notice(string.format("shard %d/%d: %d of the plan's %d jobs (plan %s)", index, count, n, #plan,
                            hash:sub(1, 12)))
  return mine
end

return M
