-- clade: the experiment language. Declarations register into clade.registry; `clade run`
-- then evaluates every experiment of the file (see clade.runner).
local core = require "clade.core"

local clade = { core = core, tensor = core.tensor }
clade.registry = { models = {}, datasets = {}, experiments = {}, order = {},
                   text_types = {}, protocols = {}, trains = {} }

-- Where a declaration was written: "file:line", and the folder paths resolve against.
local function caller(level)
  local file, line = core.caller_file(level or 4)
  return file, line
end

local function dirname(p)
  return p:match("^(.*)/[^/]*$") or "."
end

local function resolve(base, p)
  if p == nil or p:sub(1, 1) == "/" then return p end
  return base .. "/" .. p
end
clade.resolve = resolve
clade.dirname = dirname

-- Check a declaration's fields against its schema: unknown or misspelled keys are errors.
local function check_fields(kind, name, t, schema, where)
  if type(t) ~= "table" then
    error(string.format("%s %s: expected a table { ... }", kind, name), 0)
  end
  for k, v in pairs(t) do
    local want = schema[k]
    if want == nil then
      local known = {}
      for key in pairs(schema) do known[#known + 1] = key end
      table.sort(known)
      error(string.format("%s: %s '%s': unknown field '%s' (known: %s)", where, kind, name,
                          tostring(k), table.concat(known, ", ")), 0)
    end
    if want ~= "any" and type(v) ~= want then
      error(string.format("%s: %s '%s': field '%s' must be a %s, not a %s", where, kind, name, k,
                          want, type(v)), 0)
    end
  end
end
clade.check_fields = check_fields

local function declare(kind, schema, finish)
  return function(name)
    if type(name) ~= "string" then
      error(kind .. ": expected a name string, as in " .. kind .. ' "name" { ... }', 2)
    end
    return function(t)
      local file, line = caller(3)
      local where = string.format("%s:%d", file or "?", line or 0)
      check_fields(kind, name, t, schema, where)
      local obj = finish(name, t, file and dirname(file) or ".", where)
      obj.name, obj.where = name, where
      local view = {} -- the registry keeps its own record; the file gets a copy
      for k, v in pairs(obj) do view[k] = v end
      return view
    end
  end
end

clade.model = declare("model", {
  path = "string", config = "string", gelu = "string", features = "string", precision = "string",
}, function(name, t, dir, where)
  if not t.path and not t.features then
    error(string.format("%s: model '%s' needs path = ... or features = ...", where, name), 0)
  end
  for _, k in ipairs({ "path", "config", "gelu", "precision" }) do -- never read for precomputed features
    if t.features and t[k] then
      error(string.format("%s: model '%s': features = ... is precomputed, so field '%s' would never be read", where, name, k), 0)
    end
  end
  if t.gelu and t.gelu ~= "exact" and t.gelu ~= "quick" then
    error(string.format("%s: model '%s': gelu must be \"exact\" or \"quick\", not %q", where, name, t.gelu), 0)
  end
  local m = { kind = t.features and "features" or "encoder", path = resolve(dir, t.path),
              config = resolve(dir, t.config), gelu = t.gelu, features = resolve(dir, t.features),
              precision = t.precision }
  clade.registry.models[name] = m
  return m
end)

clade.dataset = declare("dataset", {
  root = "string", manifest = "string", images = "number", classes = "number",
}, function(name, t, dir, where)
  if not t.root then error(string.format("%s: dataset '%s' needs root = ...", where, name), 0) end
  local root = resolve(dir, t.root)
  local d = { root = root, manifest = resolve(root, t.manifest or "metadata.csv"),
              expect_images = t.images, expect_classes = t.classes } -- checked against the manifest
  clade.registry.datasets[name] = d
  return d
end)

clade.experiment = declare("experiment", {
  models = "table", datasets = "table", protocol = "table", protocols = "table",
}, function(name, t, dir, where)
  if t.protocol and t.protocols then
    error(string.format("%s: experiment '%s': give protocol = ... or protocols = { ... }, not both", where, name), 0)
  end
  local protos = t.protocols or { t.protocol }
  if #protos == 0 then error(string.format("%s: experiment '%s' needs protocol = ...", where, name), 0) end
  for _, p in ipairs(protos) do
    if type(p) ~= "table" or not p.protocol then
      error(string.format("%s: experiment '%s': protocol must be zero_shot{...}, few_shot{...}, ...", where, name), 0)
    end
  end
  if not t.models or #t.models == 0 then error(string.format("%s: experiment '%s' needs models = { ... }", where, name), 0) end
  if not t.datasets or #t.datasets == 0 then error(string.format("%s: experiment '%s' needs datasets = { ... }", where, name), 0) end
  if clade.registry.experiments[name] then
    error(string.format("%s: experiment '%s' is declared twice", where, name), 0)
  end
  local e = { models = t.models, datasets = t.datasets, protocols = protos }
  clade.registry.experiments[name] = e
  table.insert(clade.registry.order, name)
  return e
end)

-- train "name" { from = "model", datasets = {...}, text_types = mixture {...}, ... } declares
-- the model fine-tuned from `from` on the datasets' rows (of `split` when given), which later
-- experiments of the file use by name; clade.runner trains it (clade.train_job) before any
-- evaluation.
local function int_field(where, name, k, v, lo, hi)
  if v == nil then return nil end
  if v ~= math.floor(v) or v < lo or v > hi then
    error(string.format("%s: train '%s': %s must be an integer in [%d, %d], not %s", where, name, k, lo, hi,
                        tostring(v)), 0)
  end
  return math.tointeger(v)
end

clade.train = declare("train", {
  from = "string", datasets = "table", split = "string", text_types = "any", templates = "any",
  epochs = "number", batch_size = "number", lr = "number", weight_decay = "number", warmup = "number",
  seed = "number", freeze = "table", augment = "boolean", draw = "string", projections_only = "boolean",
  clip_grad = "number", save_every = "number",
}, function(name, t, dir, where)
  local function bad(fmt, ...) error(string.format("%s: train '%s': " .. fmt, where, name, ...), 0) end
  if clade.registry.models[name] then bad("a model of that name is already declared") end
  if not t.from then bad("needs from = \"model\" (the model to fine-tune)") end
  local parent = clade.registry.models[t.from]
  if not parent then bad("from = '%s' is not a model declared above", t.from) end
  if parent.kind == "features" then bad("from = '%s' is precomputed features, not a model to train", t.from) end
  if not t.datasets or #t.datasets == 0 then bad("needs datasets = { ... }") end
  local data = {}
  for i, d in ipairs(t.datasets) do
    if type(d) == "string" then
      data[i] = { dataset = d, split = t.split }
    elseif type(d) == "table" and type(d.dataset or d[1]) == "string" then
      for k in pairs(d) do
        if k ~= 1 and k ~= "dataset" and k ~= "split" then bad("datasets[%d]: unknown field '%s' (known: dataset, split)", i, tostring(k)) end
      end
      if d.split ~= nil and type(d.split) ~= "string" then bad("datasets[%d]: split must be a string", i) end
      data[i] = { dataset = d.dataset or d[1], split = d.split or t.split }
    else
      bad("datasets[%d] must be a dataset name or { dataset = \"name\", split = \"train\" }", i)
    end
  end
  -- the mixture: mixture { type = weight, ... } or one text type by name
  local mix = t.text_types or "taxonomic"
  if type(mix) == "string" then
    mix = { { type = mix, weight = 1 } }
  elseif type(mix) == "table" and type(mix.mixture) == "table" then
    mix = mix.mixture
  else
    bad("text_types must be mixture { type = weight, ... } or a text type's name")
  end
  local total = 0
  for _, p in ipairs(mix) do total = total + p.weight end
  if not (total > 0) then bad("the mixture's weights sum to %s, not a positive number", tostring(total)) end
  if t.draw and t.draw ~= "batch" and t.draw ~= "example" then
    bad("draw must be \"batch\" (one text type per batch, as BioCLIP) or \"example\", not %q", t.draw)
  end
  if t.templates ~= nil and type(t.templates) ~= "string" and type(t.templates) ~= "table" then
    bad("templates must be a template set's name or a list of strings with {}")
  end
  for i, f in ipairs(t.freeze or {}) do
    if type(f) ~= "string" or f == "" then bad("freeze[%d] must be a parameter-name prefix", i) end
  end
  for _, k in ipairs({ "lr", "weight_decay", "clip_grad" }) do
    if t[k] and not (t[k] >= 0 and t[k] < math.huge) then bad("%s must be a number >= 0", k) end
  end
  local m = {
    kind = "encoder", trained = true, from = t.from, data = data, mixture = mix, templates = t.templates,
    epochs = int_field(where, name, "epochs", t.epochs, 1, 65535) or 1,
    batch_size = int_field(where, name, "batch_size", t.batch_size, 2, 1000000) or 64,
    lr = t.lr or 5e-4, weight_decay = t.weight_decay or 0.2,
    warmup = int_field(where, name, "warmup", t.warmup, 0, 1000000000) or 0,
    seed = int_field(where, name, "seed", t.seed, 0, 65535) or 0,
    freeze = t.freeze or {}, augment = t.augment ~= false, draw = t.draw or "batch",
    projections_only = t.projections_only or false, clip_grad = t.clip_grad or 0,
    save_every = int_field(where, name, "save_every", t.save_every, 0, 1000000000) or 0,
  }
  clade.registry.models[name] = m
  clade.registry.trains[#clade.registry.trains + 1] = name
  return m
end)

-- Text types, templates and protocols live in their own modules; the DSL names are global.
local text_types = require "clade.text_types"
local templates = require "clade.templates"
local protocols = require "clade.protocols"
clade.text_types, clade.templates, clade.protocols = text_types, templates, protocols

-- The globals of experiment files: lua/clade/sandbox.lua.
return clade
