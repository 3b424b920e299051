-- Text types: how a class becomes a name in a prompt (BioCLIP's taxonomy flattening).
-- Each type is a function of the class record {label, kingdom, phylum, cls, order, family,
-- genus, species, common_name}; add one with text_type "name" { text = function(c) ... end }.
local M = { types = {}, order = {} }

local function capitalize(s)
  -- Python's str.capitalize on the ASCII names of the suites: first upper, rest lower.
  return s:sub(1, 1):upper() .. s:sub(2):lower()
end

local function nonempty(s)
  if s == nil then return nil end
  s = s:match("^%s*(.-)%s*$")
  if s == "" then return nil end
  return s
end

local function scientific(c)
  local g, s = nonempty(c.genus), nonempty(c.species)
  if not g then return nil end
  if s then return capitalize(g) .. " " .. s:lower() end
  return capitalize(g)
end

local function taxonomic(c)
  if not nonempty(c.kingdom) then return scientific(c) end
  local parts = {}
  for _, rank in ipairs({ "kingdom", "phylum", "cls", "order", "family", "genus" }) do
    local v = nonempty(c[rank])
    if v then parts[#parts + 1] = capitalize(v) end
  end
  local sp = nonempty(c.species)
  if sp then parts[#parts + 1] = sp:lower() end
  return table.concat(parts, " ")
end

local function with_common(base)
  return function(c)
    local b = base(c)
    if b == nil then return nil end
    local common = nonempty(c.common_name)
    if common then return b .. " with common name " .. common end
    return b
  end
end

-- needs: "taxonomy" means the dataset must have taxonomy columns (else an error names it).
function M.define(name)
  return function(t)
    if type(t) ~= "table" or type(t.text) ~= "function" then
      error("text_type '" .. tostring(name) .. "': expected { text = function(class) ... end }", 2)
    end
    for k in pairs(t) do
      if k ~= "text" and k ~= "needs" then
        error("text_type '" .. tostring(name) .. "': unknown field '" .. tostring(k) .. "' (known: needs, text)", 2)
      end
    end
    if t.needs ~= nil and t.needs ~= "taxonomy" then
      error("text_type '" .. tostring(name) .. "': needs must be \"taxonomy\" or absent", 2)
    end
    if M.types[name] and M.types[name].builtin then
      error("text_type '" .. tostring(name) .. "' is built in: give yours another name", 2)
    end
    if not M.types[name] then M.order[#M.order + 1] = name end
    M.types[name] = { name = name, text = t.text, needs = t.needs }
    return M.types[name]
  end
end

M.define "asis" { text = function(c) return c.label end } -- the dataset's own class label
M.define "scientific" { text = scientific, needs = "taxonomy" } -- Genus species
M.define "taxonomic" { text = taxonomic, needs = "taxonomy" } -- Kingdom Phylum Class Order Family Genus species
-- the common name (scientific when missing)
M.define "common" { text = function(c) return nonempty(c.common_name) or scientific(c) end, needs = "taxonomy" }
-- <scientific> with common name <common>, <taxonomic> with common name <common>
M.define "scientific_common" { text = with_common(scientific), needs = "taxonomy" }
M.define "taxonomic_common" { text = with_common(taxonomic), needs = "taxonomy" }

for _, name in ipairs(M.order) do M.types[name].builtin = true end

function M.get(name)
  local t = M.types[name]
  if not t then
    error("unknown text type '" .. tostring(name) .. "' (known: " .. table.concat(M.order, ", ") .. ")", 0)
  end
  return t
end

-- The text of every class of a dataset for one type; errors name the dataset.
function M.class_texts(name, classes, dataset, has_taxonomy)
  local tt = M.get(name)
  if tt.needs == "taxonomy" and not has_taxonomy then
    error(string.format("dataset '%s' has no taxonomy columns, so text type '%s' cannot be used (try \"asis\")",
                        dataset, name), 0)
  end
  local out = {}
  for i, c in ipairs(classes) do
    local s = tt.text(c)
    if s == nil or s == "" then
      error(string.format("dataset '%s': class '%s' has no %s name", dataset, c.label, name), 0)
    end
    out[i] = s
  end
  return out
end

-- mixture { taxonomic_common = 0.5, common = 0.5 }: the class embedding is the renormalised
-- weighted sum of the per-type class embeddings.
function M.mixture(t)
  local parts, total = {}, 0
  for k, w in pairs(t) do
    if type(k) ~= "string" or type(w) ~= "number" or w < 0 then
      error("mixture: expected { text_type = weight, ... } with weights >= 0", 2)
    end
    local known, why = pcall(M.get, k)
    if not known then error("mixture: " .. why, 2) end -- named at the file's line
    parts[#parts + 1] = { type = k, weight = w }
    total = total + w
  end
  if #parts == 0 or total <= 0 then error("mixture: needs at least one positive weight", 2) end
  table.sort(parts, function(a, b) return a.type < b.type end)
  local names = {}
  for _, p in ipairs(parts) do names[#names + 1] = string.format("%s=%g", p.type, p.weight) end
  return { mixture = parts, name = "mixture(" .. table.concat(names, ",") .. ")" }
end

return M
