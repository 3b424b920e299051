-- BIOSCAN-style retrieval, CLIBD's evaluation, on the sample suite's bioscan_sample (`clade
-- synth --out results/sample`): 12 insect species with DNA barcodes and images, BIOSCAN-1M's
-- splits. A query (image or barcode) takes the labels of its closest keys; micro and macro
-- top-1/3/5 per query split (test_seen, test_unseen) and rank (order .. species).
--
-- image->image runs with the sample's CLIP (RANDOM weights: images of a species still share a
-- look, so seen species are found). image->dna and dna->dna need a model with a DNA tower: a
-- CLIBD checkpoint's features of the sample, one row per manifest row, made by
--   cut -d, -f2 metadata.csv | tail -n +2 > images.txt; cut -d, -f3 metadata.csv | tail -n +2 > dna.txt
--   (cd bioscan_sample && xargs -a ../images.txt clade embed --model CLIBD_FOLDER --dna ../dna.txt \
--      --out clibd_features.safetensors --images)
-- and named by CLADE_CLIBD_FEATURES.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"
local clibd = getenv("CLADE_CLIBD_FEATURES")

model "sample-clip" { path = sample .. "/model" }
dataset "bioscan-sample" { root = sample .. "/data/bioscan_sample" }

experiment "bioscan-image-image" {
  models = { "sample-clip" }, datasets = { "bioscan-sample" },
  protocol = retrieval { query = "image", key = "image" },
}

if clibd then
  model "clibd" { features = clibd } -- a CLIBD checkpoint's image and DNA embeddings of the sample
  experiment "bioscan-clibd" {
    models = { "clibd" }, datasets = { "bioscan-sample" },
    protocols = {
      retrieval { query = "image", key = "dna" }, -- the defaults spelled out
      retrieval { query = "dna", key = "dna" },
      retrieval { query = "image", key = "image" },
      retrieval { query = "image+dna", key = "image+dna" },
    },
  }
end
