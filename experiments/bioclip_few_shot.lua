-- The BioCLIP paper's 1-shot and 5-shot tables: SimpleShot (CL2N, nearest centroid) with
-- BioCLIP's own sampler, 5 trials. Same layout of CLADE_DATA and CLADE_MODELS as
-- bioclip_zero_shot.lua.
local suites = require "clade.suites"
local models = getenv("CLADE_MODELS") or "models"

model "bioclip" { path = models .. "/bioclip" }
model "bioclip2" { path = models .. "/bioclip-2" } -- BioCLIP 2, ViT-L/14
model "clip" { path = models .. "/clip-vit-b-16", config = "ViT-B-16", gelu = "quick" }
model "openclip" { path = models .. "/openclip-vit-b-16-laion2b", config = "ViT-B-16" }

experiment "few-shot" {
  models = { "clip", "openclip", "bioclip", "bioclip2" }, datasets = suites.all,
  protocol = few_shot { shots = { 1, 5 }, trials = 5, sampler = "bioclip" },
}
