-- The BioCLIP benchmark: ten datasets. Class lists ship with clade (lua/clade/suites/*/
-- metadata.csv); images live under $CLADE_DATA/<folder> (default ./data), laid out as the
-- manifests' filepath column says. Birds 525 ships no class list: put the dataset's
-- metadata.csv (filepath,class) in $CLADE_DATA/birds525.
--   local suites = require "clade.suites"   -- declares the datasets
--   experiment "x" { datasets = suites.all, ... }
local core = require "clade.core"
local clade = require "clade"

local data = core.abspath(core.getenv("CLADE_DATA") or "data")

local M = {
  -- name, folder, classes, images, labels (BIOCLIP.md's table)
  list = {
    { "birds525", "birds525", 525, 2625, "species" },
    { "plankton", "PLK_Mini", 86, 3440, "asis" },
    { "insects", "INS_Mini", 104, 4160, "asis" },
    { "insects2", "INS_2_Mini", 102, 4080, "asis" },
    { "plantnet", "PLT_NET_Mini", 25, 1000, "asis" },
    { "fungi", "FNG_Mini", 25, 1000, "asis" },
    { "plantvillage", "PLT_VIL_Mini", 38, 1520, "asis" },
    { "medicinal_leaf", "MED_LF_Mini", 25, 1000, "asis" },
    { "plantdoc", "PLT_DOC_Mini", 27, 1080, "asis" },
    { "rare_species", "rare_species", 400, 11983, "taxonomy" },
  },
  all = {},
  -- the text type each dataset is scored with in the paper's zero-shot table
  zero_shot_text = {},
}

for _, d in ipairs(M.list) do
  local name, folder, classes, images, labels = d[1], d[2], d[3], d[4], d[5]
  local shipped = core.resource("lua/clade/suites/" .. folder .. "/metadata.csv")
  clade.dataset(name) {
    root = data .. "/" .. folder,
    manifest = core.file_exists(shipped) and shipped or "metadata.csv",
    classes = classes, images = images,
  }
  M.all[#M.all + 1] = name
  M.zero_shot_text[name] = labels == "taxonomy" and "taxonomic_common" or "asis"
end

return M
