-- The BioCLIP paper's zero-shot table (top-1 over the ten datasets), BioCLIP beside the
-- CLIP and OpenCLIP baselines. Set CLADE_DATA to the folder holding the datasets and
-- CLADE_MODELS to the folder holding the checkpoints, each a hub folder as downloaded:
--   bioclip/                    huggingface.co/imageomics/bioclip
--                               (open_clip_config.json + open_clip_pytorch_model.bin)
--   bioclip-2/                  huggingface.co/imageomics/bioclip-2 (BioCLIP 2: open_clip
--                               ViT-L/14; a training-only key such as visual.continual_proj
--                               is left unused, as open_clip does, and named in a warning)
--   clip-vit-b-16/              huggingface.co/timm/vit_base_patch16_clip_224.openai
--                               (open_clip_config.json + open_clip_pytorch_model.bin:
--                               OpenAI CLIP ViT-B/16 in open_clip's layout; QuickGELU)
--   openclip-vit-b-16-laion2b/  huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K
--                               (open_clip_config.json + open_clip_pytorch_model.bin; GELU)
-- (OpenAI's own ViT-B-16.pt is a TorchScript archive, not a state dict: use the hub copy.)
local suites = require "clade.suites"
local models = getenv("CLADE_MODELS") or "models"

model "bioclip" { path = models .. "/bioclip" }
model "bioclip2" { path = models .. "/bioclip-2" } -- BioCLIP 2, ViT-L/14
model "clip" { path = models .. "/clip-vit-b-16", config = "ViT-B-16", gelu = "quick" } -- OpenAI CLIP ViT-B/16
model "openclip" { path = models .. "/openclip-vit-b-16-laion2b", config = "ViT-B-16" } -- OpenCLIP ViT-B/16 LAION-2B

-- BioCLIP and BioCLIP 2 read taxonomic+common names where a dataset has them; the baselines
-- common names.
for _, name in ipairs(suites.all) do
  local tt = suites.zero_shot_text[name]
  experiment("zero-shot/bioclip/" .. name) {
    models = { "bioclip", "bioclip2" }, datasets = { name },
    protocol = zero_shot { text_types = { tt }, templates = "bioclip81" },
  }
  experiment("zero-shot/baselines/" .. name) {
    models = { "clip", "openclip" }, datasets = { name },
    protocol = zero_shot { text_types = { tt == "asis" and "asis" or "common" }, templates = "openai80" },
  }
end
