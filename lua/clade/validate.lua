-- What can be known before any encoding, checked before any: every manifest a run uses loads
-- (UTF-8, rows, counts the dataset declares), every protocol accepts its datasets (a text
-- type that needs taxonomy on a dataset without it, shots larger than a class). Questionable
-- data (duplicate rows, classes short of the shots asked) is a warning with its count, an
-- error under `clade run --strict`.
local core = require "clade.core"
local protocols = require "clade.protocols"
local M = {}

-- A shallow copy: what a file's own protocol gets of clade's tables, to change as it likes.
function M.copy(t)
  local o = {}
  for k, v in pairs(t) do o[k] = v end
  return o
end

-- an error raised inside clade's own Lua, without its runner.lua:NN: prefix
function M.strip(err)
  return (tostring(err):gsub("^[^\n]-/lua/clade/[%w_/]+%.lua:%d+: ", ""))
end

local function check_manifest(dname, d, man)
  local function declared(field, want, have)
    if want and want ~= have then
      error(string.format("%s: dataset '%s' declares %s = %d, but %s lists %d", d.where, dname, field, want,
                          man.path, have), 0)
    end
  end
  declared("images", d.expect_images, #man.rows)
  declared("classes", d.expect_classes, #man.classes)
  local seen, dups, first = {}, 0, nil
  for _, r in ipairs(man.rows) do
    local prev = seen[r.filepath]
    if prev then
      dups = dups + 1
      first = first or string.format("line %d repeats line %d, %s", r.line, prev, r.filepath)
    else
      seen[r.filepath] = r.line
    end
  end
  if dups > 0 then
    core.warn(string.format("%s: %d duplicate row%s (%s)", man.path, dups, dups == 1 and "" or "s", first))
  end
end

-- A manifest column by name, one string per row; a missing column names the dataset.
function M.column(dname, d, man, name)
  man.column_cache = man.column_cache or {}
  local v = man.column_cache[name]
  if v then return v end
  v = man.data:column(name)
  if not v then
    error(string.format("dataset '%s' (%s) has no column '%s' (columns: %s)", dname, d.manifest, tostring(name),
                        table.concat(man.columns, ", ")), 0)
  end
  man.column_cache[name] = v
  return v
end

-- reg: the declarations; manifest(dname, d): the runner's (cached) manifest loader
function M.data(reg, manifest)
  local checked = {}
  for _, ename in ipairs(reg.order) do
    local e = reg.experiments[ename]
    for _, dname in ipairs(e.datasets) do
      local d = reg.datasets[dname]
      local ok, man = pcall(manifest, dname, d)
      if not ok then error(string.format("%s: dataset '%s': %s", d.where, dname, M.strip(man)), 0) end
      if not checked[dname] then
        checked[dname] = true
        check_manifest(dname, d, man)
      end
      for _, p in ipairs(e.protocols) do
        local proto = protocols.lookup(p.protocol)
        if proto.validate then
          local data = { dataset = dname, classes = man.classes, has_taxonomy = man.has_taxonomy, n_images = #man.rows,
                         n_rows = #man.rows, manifest = d.manifest,
                         column = function(name) return M.column(dname, d, man, name) end }
          if not proto.builtin then -- the file's own validate gets copies to change
            data.classes = {}
            for i, c in ipairs(man.classes) do data.classes[i] = M.copy(c) end
            data.column = function(name) return M.copy(M.column(dname, d, man, name)) end
          end
          local vok, err = pcall(proto.validate, p.opts, data)
          if not vok then
            if core.limit_spent() then error(err, 0) end
            error(string.format("%s: experiment '%s', %s on dataset '%s': %s", e.where, ename, p.protocol, dname,
                                M.strip(err)), 0)
          end
        end
      end
    end
  end
end

return M
