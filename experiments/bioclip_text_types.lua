-- The BioCLIP paper's text-type table on Rare Species: zero-shot top-1 for each text type,
-- and a mixture of two types. Same CLADE_DATA / CLADE_MODELS layout as bioclip_zero_shot.lua.
require "clade.suites"
local models = getenv("CLADE_MODELS") or "models"

model "bioclip" { path = models .. "/bioclip" }

experiment "text-types" {
  models = { "bioclip" }, datasets = { "rare_species" },
  protocol = zero_shot {
    text_types = { "common", "scientific", "taxonomic", "scientific_common", "taxonomic_common" },
    templates = "bioclip81",
  },
}

experiment "text-type-mixture" {
  models = { "bioclip" }, datasets = { "rare_species" },
  protocol = zero_shot { text_types = mixture { taxonomic_common = 0.5, common = 0.5 } },
}
