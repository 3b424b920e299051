-- BIOSCAN-style retrieval, CLIBD's evaluation, on the sample suite's bioscan_sample (`clade
-- synth --out results/sample`): 12 insect species with DNA barcodes and images, BIOSCAN-1M's
-- splits. A query (image or barcode) takes the labels of its closest keys; micro and macro
-- top-1/3/5 per query split (test_seen, test_unseen) and rank (order .. species).
--
-- Both models here have RANDOM weights (clade synth writes them; nothing is trained):
-- - "sample-clip", the sample's open_clip CLIP: image->image. Images of a species still share a
--   look, so seen species are found well above chance.
-- - "sample-clibd", the sample's CLIBD-shaped model (image ViT, BarcodeBERT DNA and BERT text
--   towers, in the layout of a CLIBD checkpoint folder): image->dna, dna->dna, image->image and
--   the averaged image+dna. Its towers were never aligned, so image->dna is at chance; dna->dna
--   still finds the species because barcodes of one species share most of their 5-mers, and
--   even a random tower maps equal 5-mers alike.
-- The numbers show that the pipeline runs, not what CLIBD can do. For a real CLIBD checkpoint,
-- point `path` at its folder (best.pth + config.json, see ../../shared/CLIBD.md), or name a file
-- of its features of the sample, one row per manifest row, in CLADE_CLIBD_FEATURES:
--   cut -d, -f2 metadata.csv | tail -n +2 > images.txt; cut -d, -f3 metadata.csv | tail -n +2 > dna.txt
--   (cd bioscan_sample && xargs -a ../images.txt clade embed --model CLIBD_FOLDER --dna ../dna.txt \
--      --out clibd_features.safetensors --images)
local sample = getenv("CLADE_SAMPLE") or "../results/sample"
local features = getenv("CLADE_CLIBD_FEATURES")

model "sample-clip" { path = sample .. "/model" }
if features then
  model "sample-clibd" { features = features } -- a CLIBD checkpoint's image and DNA embeddings of the sample
else
  model "sample-clibd" { path = sample .. "/clibd" }
end
dataset "bioscan-sample" { root = sample .. "/data/bioscan_sample" }

experiment "bioscan-image-image" {
  models = { "sample-clip" }, datasets = { "bioscan-sample" },
  protocol = retrieval { query = "image", key = "image" },
}

experiment "bioscan-clibd" {
  models = { "sample-clibd" }, datasets = { "bioscan-sample" },
  protocols = {
    retrieval { query = "image", key = "dna" }, -- the defaults spelled out below
    retrieval { query = "dna", key = "dna", queries = { "test_seen", "test_unseen" },
                keys = { "seen_keys", "val_unseen_keys", "test_unseen_keys" },
                ranks = { "order", "family", "genus", "species" }, k = { 1, 3, 5 } },
    retrieval { query = "image", key = "image" },
    retrieval { query = "image+dna", key = "image+dna" },
  },
}
