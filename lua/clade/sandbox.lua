-- The experiment environment: the globals an experiment file (and the modules of its own
-- folder) sees, exactly those docs/lua-api.md lists. clade's internals (clade.core, the
-- runner, the registries) stay in the trusted world; the tables handed over are copies, so
-- replacing string.format or clade.tensor.new in an experiment changes nothing of clade's.
local core = require "clade.core"
local clade = require "clade"
local S = core.sandbox

local function copy(t, drop)
  local o = {}
  for k, v in pairs(t) do
    if not (drop and drop[k]) then o[k] = v end
  end
  return o
end

-- clade.tensor, clade.pyrandom (clade.core.pyrandom: its older spelling)
local public = { tensor = copy(core.tensor), pyrandom = core.pyrandom, core = { pyrandom = core.pyrandom } }

local protocols = require "clade.protocols"
local text_types = require "clade.text_types"

local env = {
  -- Lua's base library, less the file loaders and collectgarbage; pcall, xpcall and
  -- coroutine.resume cannot swallow a spent instruction budget, memory cap or Ctrl-C
  assert = assert, error = error, getmetatable = getmetatable, ipairs = ipairs, next = next,
  pairs = pairs, print = print, rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = rawset, select = select, setmetatable = setmetatable, tonumber = tonumber,
  tostring = tostring, type = type, _VERSION = _VERSION,
  pcall = S.pcall, xpcall = S.xpcall, load = S.load, require = S.require,
  string = copy(string, { dump = true }), table = copy(table), math = copy(math), utf8 = copy(utf8),
  coroutine = copy(coroutine),
  -- the DSL
  model = clade.model, dataset = clade.dataset, experiment = clade.experiment, train = clade.train,
  text_type = text_types.define, mixture = text_types.mixture, protocol = protocols.define,
  zero_shot = protocols.get("zero_shot"), few_shot = protocols.get("few_shot"),
  linear_probe = protocols.get("linear_probe"), retrieval = protocols.get("retrieval"),
  templates = clade.templates.define,
  getenv = core.getenv, clade = public,
}
env.coroutine.resume = S.resume
env._G = env

return {
  env = env,
  -- what the experiment's `require` may load of clade's: name -> loader
  modules = {
    clade = function() return public end,
    ["clade.suites"] = function() return require "clade.suites" end,
    -- the built-in protocols' pieces, for protocols of one's own (a copy: replacing one of
    -- its functions does not reach the built-ins)
    ["clade.protocols.common"] = function() return copy(require "clade.protocols.common") end,
  },
  public = public,
}
