-- An ablation on the sample suite: text types, a mixture, prompt sets, and a linear probe.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"

model "sample-clip" { path = sample .. "/model" }
dataset "rare-sample" { root = sample .. "/data/rare_sample" }

experiment "ablation-text-types" {
  models = { "sample-clip" }, datasets = { "rare-sample" },
  protocols = {
    zero_shot { text_types = { "asis", "common", "scientific", "taxonomic", "scientific_common", "taxonomic_common" },
                templates = "plain" },
    zero_shot { text_types = mixture { taxonomic_common = 0.5, common = 0.5 }, templates = "openai80" },
  },
}

experiment "ablation-linear-probe" {
  models = { "sample-clip" }, datasets = { "rare-sample" },
  protocol = linear_probe { shots = { 1, 3 }, trials = 3, lambda = 0.5 },
}
