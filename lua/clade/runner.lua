-- The runner: evaluates every experiment of a file, model by model and dataset by dataset,
-- and hands each finished evaluation to the store (one transaction each). It also serves
-- `clade check` and `clade classes`.
local core = require "clade.core"
local text_types = require "clade.text_types"
local protocols = require "clade.protocols"
local shard = require "clade.shard"
local validate = require "clade.validate"
local templates = require "clade.templates"
local M = {}

local function registry() return require("clade").registry end

local function get_dataset(name, where)
  local d = registry().datasets[name]
  if not d then error(string.format("%s: unknown dataset '%s'", where, tostring(name)), 0) end
  return d
end

local function get_model(name, where)
  local m = registry().models[name]
  if not m then error(string.format("%s: unknown model '%s'", where, tostring(name)), 0) end
  return m
end

local manifests = {}
local function manifest(name, d)
  if not manifests[name] then manifests[name] = core.manifest(d.manifest) end
  return manifests[name]
end

local handles = {}
local function model_handle(name, m)
  if not handles[name] then
    handles[name] = core.open_model { name = name, path = m.path, config = m.config, gelu = m.gelu,
                                      precision = m.precision }
  end
  return handles[name]
end

local function image_paths(d, man)
  local out = {}
  for i, r in ipairs(man.rows) do out[i] = core.join(d.root, r.filepath) end
  return out
end

local copy = validate.copy

-- ctx.tensor: a copy of the public tensor module per evaluation (a protocol may change its own)
local function public_tensor() return copy(core.tensor) end

-- A job's errors name the experiment's file and line, not clade's own Lua; an interrupt or
-- a spent limit goes through as it is.
local function located(where, f, ...)
  local res = table.pack(pcall(f, ...))
  if res[1] then return table.unpack(res, 2, res.n) end
  if res[2] == "interrupted" or core.limit_spent() then error(res[2], 0) end
  error(where .. ": " .. validate.strip(res[2]), 0)
end

-- ctx.emit's fields: anything else is an error, and so is an evaluation with no results or a
-- NaN (nothing is stored from an empty evaluation)
local emit_fields = { text_type = "string", shots = "number", params = "table", results = "table",
                      predictions = "table", support = "table", n_examples = "number",
                      query = "string", key = "string", split = "string", rank = "string" }
local function emit_problem(ev)
  if type(ev) ~= "table" then return "expected { results = {...}, ... }" end
  for k, v in pairs(ev) do
    if not emit_fields[k] then
      return string.format("unknown field '%s' (known: key, n_examples, params, predictions, query, rank, results, "
                           .. "shots, split, support, text_type)", tostring(k))
    end
    if type(v) ~= emit_fields[k] then return string.format("field '%s' must be a %s, not a %s", k, emit_fields[k], type(v)) end
  end
  if not ev.results or #ev.results == 0 then return "no results: an empty evaluation is not stored" end
  for i, r in ipairs(ev.results) do
    if type(r) ~= "table" or type(r.metric) ~= "string" or type(r.value) ~= "number" then
      return string.format("results[%d] must be { metric = \"name\", value = number [, trial = n] }", i)
    end
    if r.value ~= r.value then return string.format("results[%d]: metric '%s' is NaN", i, r.metric) end
  end
end

local feature_cache = {}
local function image_features(mname, m, dname, d, man)
  local key = mname .. "\0" .. dname
  if feature_cache[key] then return table.unpack(feature_cache[key]) end
  local f, hash, chash
  if m.kind == "features" then
    local path = m.features:gsub("{dataset}", dname)
    f, hash = core.load_features(path, #man.rows)
  else
    local h = model_handle(mname, m)
    f, hash, chash = h:embed_images(image_paths(d, man), mname .. " on " .. dname), h:hash(), h:config_hash()
  end
  feature_cache[key] = { f, hash, chash }
  return f, hash, chash
end

local column = validate.column

-- Raw features of one modality for the given rows (1-based manifest rows): a model of
-- precomputed features reads `<modality>_embeddings` [rows of the manifest, D] from its file;
-- an encoder embeds the rows' items (image files; otherwise the modality's manifest column,
-- e.g. dna_barcode).
local function modality_features(mname, m, dname, d, man, modality, rows)
  local key = mname .. "\0" .. dname .. "\0" .. modality
  local all = feature_cache[key]
  if not all and modality == "image" then
    all = { image_features(mname, m, dname, d, man) }
  elseif not all and m.kind == "features" then
    local path = m.features:gsub("{dataset}", dname)
    all = { core.load_features(path, #man.rows, modality .. "_embeddings") }
  elseif not all then
    local col = core.modality_column(modality)
    if not col then error(string.format("modality '%s' has no manifest column to read rows from", modality), 0) end
    local h = model_handle(mname, m)
    all = { h:embed(modality, column(dname, d, man, col), mname .. " on " .. dname), h:hash(), h:config_hash() }
  end
  feature_cache[key] = all
  return all[1]:rows(rows), all[2], all[3]
end

-- ---- training jobs (train "name" { ... }) ----

-- The training set of a declaration, built once and checked before any step (and before a
-- run is recorded): the rows of its datasets (of their split), each image with its class's
-- name per text type of the mixture. Errors name the declaration's file and line.
local function train_set(name, m)
  if m.set then return m.set end
  local where = m.where .. ": train '" .. name .. "'"
  local function fail(fmt, ...) error(string.format("%s: " .. fmt, where, ...), 0) end
  local types, weights = {}, {}
  for i, p in ipairs(m.mixture) do
    if not text_types.types[p.type] then
      fail("unknown text type '%s' (known: %s)", p.type, table.concat(text_types.order, ", "))
    end
    types[i], weights[i] = p.type, p.weight
  end
  local tl = {}
  if m.templates ~= nil then
    local ok, l = pcall(templates.get, m.templates)
    if not ok then fail("%s", validate.strip(l)) end
    tl = l
  end
  local images, names, data = {}, {}, {}
  for _, dd in ipairs(m.data) do
    local d = get_dataset(dd.dataset, where)
    local ok, man = pcall(manifest, dd.dataset, d)
    if not ok then fail("dataset '%s': %s", dd.dataset, validate.strip(man)) end
    local split
    if dd.split then
      local has, col = pcall(column, dd.dataset, d, man, "split")
      if not has then
        fail("dataset '%s' (%s) has no split column, so split = %q selects nothing", dd.dataset, d.manifest, dd.split)
      end
      split = col
    end
    local texts = {}
    for ti, tname in ipairs(types) do
      local tok, tx = pcall(text_types.class_texts, tname, man.classes, dd.dataset, man.has_taxonomy)
      if not tok then fail("%s", validate.strip(tx)) end
      texts[ti] = tx
    end
    local n, seen, splits = 0, {}, {}
    for ri, r in ipairs(man.rows) do
      if split and not seen[split[ri]] then seen[split[ri]] = true; splits[#splits + 1] = split[ri] end
      if not split or split[ri] == dd.split then
        n = n + 1
        images[#images + 1] = core.join(d.root, r.filepath)
        for ti = 1, #types do names[#names + 1] = texts[ti][r.class] end
      end
    end
    if split and n == 0 then
      table.sort(splits)
      fail("dataset '%s' has no row of split '%s' (its splits: %s)", dd.dataset, dd.split, table.concat(splits, ", "))
    end
    data[#data + 1] = { dataset = dd.dataset, split = dd.split or "", examples = n }
  end
  if #images == 0 then fail("the training set is empty") end
  if m.batch_size > #images then
    fail("batch_size %d is larger than the training set (%d examples)", m.batch_size, #images)
  end
  m.set = { images = images, names = names, types = types, weights = weights, templates = tl, data = data }
  return m.set
end

-- Trains every declared model in declaration order (a model trained from a trained one
-- follows it), each a claimed job; a model trained before (same content) comes from the
-- cache beside the results database. Returns the number of jobs.
local function train_all(reg)
  for _, name in ipairs(reg.trains) do
    local m = reg.models[name]
    local set = train_set(name, m)
    local parent = reg.models[m.from]
    local job = "train\31" .. name
    core.check_interrupt()
    local state = core.claim(job)
    core.notice(string.format("train %s: from %s, %d examples, %d epoch%s of batch %d", name, m.from, #set.images,
                              m.epochs, m.epochs == 1 and "" or "s", m.batch_size))
    local ok, path, _, trained = pcall(core.train, {
      name = name, where = m.where, parent = { path = parent.path, config = parent.config, gelu = parent.gelu },
      parent_name = m.from, images = set.images, names = set.names, types = set.types, weights = set.weights,
      templates = set.templates, data = set.data, epochs = m.epochs, batch_size = m.batch_size, lr = m.lr,
      weight_decay = m.weight_decay, warmup = m.warmup, seed = m.seed, freeze = m.freeze, augment = m.augment,
      draw = m.draw, projections_only = m.projections_only, clip_grad = m.clip_grad, save_every = m.save_every,
    })
    if not ok then
      if path == "interrupted" or core.limit_spent() then error(path, 0) end
      error(validate.strip(path), 0) -- it names the declaration's file and line
    end
    if not trained then core.notice(string.format("train %s: trained before, taken from %s", name, path)) end
    m.path = path
    if state == 1 then core.job_done(job) end
  end
  return #reg.trains
end

-- Every job (one protocol on one model x dataset of an experiment) is claimed before it
-- runs, so a resumed run skips finished jobs and two processes split the work. Returns the
-- number of jobs in the plan.
-- Check the whole plan before any work: every experiment names declared models and datasets,
-- and no text protocol runs on precomputed features.
function M.validate(reg)
  reg = reg or registry()
  for _, name in ipairs(reg.trains) do
    local m = reg.models[name]
    for _, dd in ipairs(m.data) do get_dataset(dd.dataset, m.where .. ": train '" .. name .. "'") end
  end
  for _, ename in ipairs(reg.order) do
    local e = reg.experiments[ename]
    local where = e.where .. ": experiment '" .. ename .. "'"
    for _, mname in ipairs(e.models) do
      local m = get_model(mname, where)
      for _, p in ipairs(e.protocols) do
        if protocols.lookup(p.protocol).needs_text and m.kind == "features" then
          error(string.format("%s: protocol %s needs a text encoder, but model '%s' is precomputed features",
                              where, p.protocol, mname), 0)
        end
      end
    end
    for _, dname in ipairs(e.datasets) do get_dataset(dname, where) end
  end
end

-- A job's key: what claims, shards and merges know it by.
function M.job_key(ename, mname, dname, pi) return table.concat({ ename, mname, dname, tostring(pi) }, "\31") end

-- The run's jobs in run order, each with its key and the images its model encodes (what
-- shards balance).
function M.plan(reg)
  local out = {}
  for _, ename in ipairs(reg.order) do
    local e = reg.experiments[ename]
    for _, mname in ipairs(e.models) do
      for _, dname in ipairs(e.datasets) do
        local n = #manifest(dname, get_dataset(dname, "experiment '" .. ename .. "'")).rows
        for pi in ipairs(e.protocols) do
          out[#out + 1] = { key = M.job_key(ename, mname, dname, pi), model = mname, dataset = dname, images = n }
        end
      end
    end
  end
  return out
end

-- clade run, before a run is recorded: manifests, text types, shots (clade.validate)
function M.validate_data()
  local reg = registry()
  validate.data(reg, manifest)
  for _, name in ipairs(reg.trains) do train_set(name, reg.models[name]) end
end

function M.run()
  local reg = registry()
  if #reg.order == 0 and #reg.trains == 0 then error("the file declares no experiment", 0) end
  M.validate(reg)
  local mine = shard.select(function() return M.plan(reg) end) -- nil: every job
  local total, jobs, skipped, held = 0, train_all(reg), 0, 0
  for _, ename in ipairs(reg.order) do
    local e = reg.experiments[ename]
    for _, mname in ipairs(e.models) do
      local m = get_model(mname, "experiment '" .. ename .. "'")
      for _, dname in ipairs(e.datasets) do
        local d = get_dataset(dname, "experiment '" .. ename .. "'")
        for pi, p in ipairs(e.protocols) do
          local job = M.job_key(ename, mname, dname, pi)
          if mine and not mine[job] then goto next_job end
          jobs = jobs + 1
          core.check_interrupt()
          local proto = protocols.lookup(p.protocol)
          if proto.needs_text and m.kind == "features" then
            error(string.format("experiment '%s': protocol %s needs a text encoder, but model '%s' is precomputed features",
                                ename, p.protocol, mname), 0)
          end
          local state = core.claim(job)
          if state == 0 then
            skipped = skipped + 1
          elseif state < 0 then
            held = held + 1
            core.notice(string.format("%s: %s on %s, %s: another process is on it", ename, mname, dname, p.protocol))
          else
            core.notice(string.format("%s: %s on %s, %s", ename, mname, dname, p.protocol))
            local where = string.format("%s: experiment '%s' (%s, %s on %s)", e.where, ename, p.protocol, mname, dname)
            local man = manifest(dname, d)
            local labels = {}
            for i, r in ipairs(man.rows) do labels[i] = r.class end
            local mhash, mconf -- the checkpoint's hash and its config's, of the first features used
            local ctx = {
              experiment = ename, dataset = dname, model = mname, tensor = public_tensor(),
              labels = labels, classes = man.classes, has_taxonomy = man.has_taxonomy,
              filepaths = man.filepaths, n_rows = #man.rows, manifest = d.manifest,
              embed_texts = function(list) return model_handle(mname, m):embed_texts(list, mname .. " prompts") end,
              embed = function(modality, list) return model_handle(mname, m):embed(modality, list, mname .. " " .. modality) end,
              column = function(name) return column(dname, d, man, name) end,
              row_features = function(modality, rows)
                local f, h, c = modality_features(mname, m, dname, d, man, modality, rows)
                if not mhash then mhash, mconf = h, c end
                return f
              end,
            }
            local own = not proto.builtin -- the file's own protocol gets its own copies to change
            if own then
              ctx.labels, ctx.filepaths = copy(labels), copy(man.filepaths)
              ctx.classes = {}
              for i, c in ipairs(man.classes) do ctx.classes[i] = copy(c) end
              ctx.column = function(name) return copy(column(dname, d, man, name)) end
            end
            -- ctx.features (raw image embeddings, manifest order) is computed on first use
            setmetatable(ctx, { __index = function(t, k)
              if k ~= "features" then return nil end
              local f, h, c = located(where, image_features, mname, m, dname, d, man)
              if not mhash then mhash, mconf = h, c end
              if own then f = f:clone() end
              rawset(t, "features", f)
              return f
            end })
            ctx.emit = function(ev)
              local bad = emit_problem(ev)
              if bad then
                local file, line = core.caller_file(2)
                error(string.format("%s:%d: %s: ctx.emit: %s", file or "?", line or 0, p.protocol, bad), 0)
              end
              core.store_eval {
                experiment = ename, model = mname, model_hash = mhash, config_hash = mconf, dataset = dname,
                protocol = p.protocol, text_type = ev.text_type or "", shots = ev.shots or 0, job = job,
                params = ev.params or {}, n_examples = ev.n_examples or #man.rows, results = ev.results,
                predictions = ev.predictions, support = ev.support, filepaths = man.filepaths,
                labels = man.labels, truth = labels,
                query = ev.query, key = ev.key, split = ev.split, rank = ev.rank,
                row_labels = ev.rank and column(dname, d, man, ev.rank) or nil,
              }
              total = total + 1
              core.check_interrupt() -- a first Ctrl-C stops after the evaluation in flight is stored
            end
            core.evaluation_budget(string.format("experiment '%s' (%s, %s on %s)", ename, p.protocol, mname, dname))
            located(where, proto.run, ctx, p.opts)
            core.job_done(job)
          end
          ::next_job::
        end
      end
    end
  end
  if skipped > 0 then core.notice(string.format("%d of %d jobs were already done (resumed run)", skipped, jobs)) end
  core.notice(string.format("%d evaluations stored", total))
  return jobs
end

-- clade check: per dataset used by the file's experiments, images found / missing / unreadable.
function M.check()
  local reg = registry()
  local used, order = {}, {}
  for _, ename in ipairs(reg.order) do
    for _, dname in ipairs(reg.experiments[ename].datasets) do
      if not used[dname] then used[dname] = true; order[#order + 1] = dname end
    end
  end
  local bad = 0
  for _, dname in ipairs(order) do
    local d = get_dataset(dname, "check")
    local ok, man = pcall(core.manifest, d.manifest)
    if not ok then
      core.emit_line(string.format("%s\terror\t%s", dname, man))
      bad = bad + 1
    else
      local found, missing, unreadable, examples = 0, 0, 0, {}
      for _, r in ipairs(man.rows) do
        local p = core.join(d.root, r.filepath)
        local st, why = core.check_image(p)
        if st == "ok" then found = found + 1
        elseif st == "missing" then missing = missing + 1; if #examples < 3 then examples[#examples + 1] = "missing " .. p end
        else unreadable = unreadable + 1; if #examples < 3 then examples[#examples + 1] = why end end
      end
      core.emit_line(string.format("%s\t%d images\t%d found\t%d missing\t%d unreadable\t%d classes",
                                   dname, #man.rows, found, missing, unreadable, #man.classes))
      for _, x in ipairs(examples) do core.notice("  " .. dname .. ": " .. x) end
      if missing + unreadable > 0 then bad = bad + 1 end
    end
  end
  if bad == 0 then M.validate_data() end -- what `clade run` checks before encoding or training
  return bad
end

-- clade classes: the label and text of every class for one text type.
function M.classes(dname, tname)
  local d = get_dataset(dname, "classes")
  local man = core.manifest(d.manifest)
  local texts = text_types.class_texts(tname, man.classes, dname, man.has_taxonomy)
  for i, c in ipairs(man.classes) do core.emit_line(c.label .. "\t" .. texts[i]) end
end

return M
