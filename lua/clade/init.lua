-- clade: the experiment language. Declarations register into clade.registry; `clade run`
-- then evaluates every experiment of the file (see clade.runner).
local core = require "clade.core"

local clade = { core = core, tensor = core.tensor }
clade.registry = { models = {}, datasets = {}, experiments = {}, order = {},
                   text_types = {}, protocols = {} }

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

-- Text types, templates and protocols live in their own modules; the DSL names are global.
local text_types = require "clade.text_types"
local templates = require "clade.templates"
local protocols = require "clade.protocols"
clade.text_types, clade.templates, clade.protocols = text_types, templates, protocols

-- The globals of experiment files: lua/clade/sandbox.lua.
return clade
