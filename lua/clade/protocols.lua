-- Protocols: how an evaluation turns image (and text) embeddings into numbers. Each is Lua
-- on clade.tensor; define your own with protocol "name" { fields = {...}, run = function(ctx, opts) }.
--
-- run(ctx, opts) gets ctx = { dataset, model, features (tensor [N,D], raw image embeddings in
-- manifest order), labels ({class index per row}), classes (manifest class records), filepaths,
-- has_taxonomy, n_rows, embed_texts(list) -> tensor [M,D] raw, embed(modality, items) -> tensor [M,D]
-- raw: "image" (file paths), "text", or any modality the model has a tower for,
-- column(name) -> {string per row}, row_features(modality, rows) -> tensor [#rows,D] raw
-- features of those manifest rows } and calls ctx.emit{...} once per
-- finished evaluation: { text_type, shots, params, results = {{trial, metric, value}},
-- predictions = {{trial, example, prediction}}, support = {{trial, class, example}} }.
-- An optional validate(opts, data) (data = { dataset, classes, has_taxonomy, n_images, n_rows,
-- manifest, column(name) }) checks every dataset of the plan before any encoding; an error it
-- raises stops the run before anything is recorded. Built-in and file-defined protocols alike
-- (a file's own gets copies of classes and columns).
local M = { protocols = {} }

local function make(name, def, builtin)
  local fields = def.fields or {}
  local function ctor(opts)
    opts = opts or {}
    if type(opts) ~= "table" then error(name .. ": expected { ... }", 2) end
    for k in pairs(opts) do
      if fields[k] == nil then
        local known = {}
        for f in pairs(fields) do known[#known + 1] = f end
        table.sort(known)
        local file, line = require("clade.core").caller_file(2)
        error(string.format("%s:%d: %s: unknown field '%s' (known: %s)", file or "?", line or 0, name,
                            tostring(k), table.concat(known, ", ")), 0)
      end
    end
    if def.check then
      local ok, err = pcall(def.check, opts)
      if not ok then
        local file, line = require("clade.core").caller_file(2)
        error(string.format("%s:%d: %s", file or "?", line or 0, tostring(err)), 0)
      end
    end
    return { protocol = name, opts = opts }
  end
  M.protocols[name] = { name = name, run = def.run, ctor = ctor, needs_text = def.needs_text,
                        validate = def.validate, builtin = builtin }
  return ctor
end

function M.define(name)
  return function(def)
    if type(def) ~= "table" or type(def.run) ~= "function" then
      error("protocol '" .. tostring(name) .. "': expected { run = function(ctx, opts) ... end }", 2)
    end
    local known = { run = "function", fields = "table", needs_text = "boolean", validate = "function" }
    for k, v in pairs(def) do
      if known[k] == nil then
        error("protocol '" .. tostring(name) .. "': unknown field '" .. tostring(k) ..
              "' (known: fields, needs_text, run, validate)", 2)
      elseif type(v) ~= known[k] then
        error("protocol '" .. tostring(name) .. "': field '" .. k .. "' must be a " .. known[k], 2)
      end
    end
    if M.protocols[name] and M.protocols[name].builtin then
      error("protocol '" .. tostring(name) .. "' is built in: give yours another name", 2)
    end
    return make(name, def)
  end
end

function M.get(name)
  local p = M.protocols[name]
  if p then return p.ctor end
  local def = require("clade.protocols." .. name)
  return make(name, def, true)
end

function M.lookup(name)
  local p = M.protocols[name]
  if not p then error("unknown protocol '" .. tostring(name) .. "'", 0) end
  return p
end

return M
