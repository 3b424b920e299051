-- BIOSCAN-style retrieval, CLIBD's evaluation, on the sample suite's bioscan_sample (`clade
-- synth --out results/sample`): 12 insect species with DNA barcodes and images, BIOSCAN-1M's
-- splits. A query (image or barcode) takes the labels of its closest keys; micro and macro
-- top-1/3/5 per query split (test_seen, test_unseen) and rank (order .. species).
--
-- image->image runs with the sample's CLIP (RANDOM weights: images of a species still share a
-- look, so seen species are found). image->dna and dna->dna need a model with a DNA tower:
-- set CLADE_CLIBD to a CLIBD folder (best.pth + config.json) to run them too.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"
local clibd = getenv("CLADE_CLIBD")

model "sample-clip" { path = sample .. "/model", description = "random weights, ViT 224/16, width 128" }
dataset "bioscan-sample" { root = sample .. "/data/bioscan_sample" }

experiment "bioscan-image-image" {
  models = { "sample-clip" }, datasets = { "bioscan-sample" },
  protocol = retrieval { query = "image", key = "image" },
}

if clibd then
  model "clibd" { path = clibd, description = "a CLIBD checkpoint: image, DNA and text towers" }
  experiment "bioscan-clibd" {
    models = { "clibd" }, datasets = { "bioscan-sample" },
    protocols = {
      retrieval { query = "image", key = "dna" }, -- the defaults spelled out
      retrieval { query = "dna", key = "dna" },
      retrieval { query = "image", key = "image" },
    },
  }
end
