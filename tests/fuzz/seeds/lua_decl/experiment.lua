model "m" { path = "models/m", gelu = "exact" }
model "feats" { features = "feats/{dataset}.safetensors" }
dataset "d" { root = "data/d", manifest = "metadata.csv" }
text_type "genus_only" { text = function(class) return class.genus or class.label end }
experiment "zs" { models = { "m" }, datasets = { "d" },
  protocol = zero_shot { text_types = { "taxonomic_common", "genus_only" }, templates = "bioclip81" } }
experiment "fs" { models = { "feats" }, datasets = { "d" },
  protocol = few_shot { shots = { 1, 5 }, trials = 2, sampler = "bioclip" } }
