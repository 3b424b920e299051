-- Prompt template sets: "bioclip81" (a photo of {}. + OpenAI's 80 ImageNet templates),
-- "openai80", "plain", or a list of strings with {} where the class name goes.
local core = require "clade.core"
local M = { sets = {} }

local function load_bioclip81()
  return core.read_lines(core.resource("lua/clade/templates/bioclip81.txt"))
end

function M.define(name)
  return function(list)
    if type(list) ~= "table" or #list == 0 then error("templates '" .. name .. "': expected a list of strings", 2) end
    M.sets[name] = list
    return list
  end
end

function M.get(spec)
  if spec == nil then spec = "bioclip81" end
  if type(spec) == "table" then
    for i, s in ipairs(spec) do
      if type(s) ~= "string" or not s:find("{}", 1, true) then
        error(string.format("templates: entry %d must be a string containing {}", i), 0)
      end
    end
    return spec
  end
  if spec == "bioclip81" then
    local l = load_bioclip81()
    local out = {}
    for _, s in ipairs(l) do if s ~= "" then out[#out + 1] = s end end
    return out
  elseif spec == "openai80" then
    local l, out = M.get("bioclip81"), {}
    for i = 2, #l do out[#out + 1] = l[i] end
    return out
  elseif spec == "plain" then
    return { "a photo of {}." }
  elseif M.sets[spec] then
    return M.sets[spec]
  end
  error("unknown template set '" .. tostring(spec) .. "' (bioclip81, openai80, plain, or a list)", 0)
end

-- Python's str.format with one positional {}: every {} becomes the name.
function M.format(template, name)
  return (template:gsub("{}", function() return name end))
end

return M
