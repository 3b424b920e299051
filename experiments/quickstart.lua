-- Quickstart: the embedded sample suite (`clade synth --out results/sample`, which ./ci/demo
-- runs first). The model's weights are RANDOM: zero-shot is at chance; few-shot rises with
-- shots because the generated classes differ visibly. Point `path` and `root` at a real
-- BioCLIP folder and dataset to get the paper's numbers.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"

model "sample-clip" { path = sample .. "/model" } -- random weights, ViT 224/16, width 128

dataset "rare-sample" { root = sample .. "/data/rare_sample", manifest = "metadata.csv" }
dataset "plankton-sample" { root = sample .. "/data/plankton_sample" }

experiment "quickstart-zero-shot" {
  models = { "sample-clip" }, datasets = { "rare-sample" },
  protocol = zero_shot { text_types = { "taxonomic_common", "common", "scientific" }, templates = "bioclip81" },
}

experiment "quickstart-few-shot" {
  models = { "sample-clip" }, datasets = { "rare-sample", "plankton-sample" },
  protocol = few_shot { shots = { 1, 5 }, trials = 5, sampler = "bioclip" },
}
