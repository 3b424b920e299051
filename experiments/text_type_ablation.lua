-- BioCLIP's text-type ablation (the paper's Table 5) on the taxonomy-structured sample:
-- fine-tune the sample CLIP once per training text type and once on the mixture of all of
-- them, then test every trained model zero-shot with every text type, on test images of the
-- species it trained on (tree-seen) and on species held out of training whose genus, family
-- and order it saw (tree-unseen). The paper's expectation, a hypothesis here: taxonomic and
-- mixed captions generalise to held-out species; common names alone do not.
--
-- `clade synth --out results/sample` writes the sample (tree_sample: colour by order, shape by
-- family, texture by genus, a mark by species) and the model (RANDOM weights: everything it
-- knows comes from this training). ./ci/demo runs the short version:
--   CLADE_ABLATION=short  trains on common, scientific, taxonomic and the mixture (default:
--                         each of the five text types, and the mixture)
--   CLADE_ABLATION_EPOCHS epochs of each training (default 25; 12 steps per epoch)
-- `clade results` lists the table; `clade report` draws the loss curves and the train-type x
-- test-type heatmaps. Trained models are cached by content: rerunning does not retrain.
local sample = getenv("CLADE_SAMPLE") or "../results/sample"
local short = getenv("CLADE_ABLATION") == "short"
local epochs = tonumber(getenv("CLADE_ABLATION_EPOCHS") or "25")

model "sample-clip" { path = sample .. "/model" }
dataset "tree" { root = sample .. "/data/tree_sample", manifest = "metadata.csv" }
dataset "tree-seen" { root = sample .. "/data/tree_sample", manifest = "test_seen.csv" }
dataset "tree-unseen" { root = sample .. "/data/tree_sample", manifest = "test_unseen.csv" }

local all = { "common", "scientific", "taxonomic", "scientific_common", "taxonomic_common" }
local trained = short and { "common", "scientific", "taxonomic" } or all
local mix = {} -- BioCLIP's mixed text type: the five types, equally likely, drawn per batch
for _, t in ipairs(all) do mix[t] = 1 end

local models = {}
local function tune(name, text_types)
  train(name) {
    from = "sample-clip", datasets = { { "tree", split = "train" } }, text_types = text_types,
    epochs = epochs, batch_size = 16, lr = 5e-4, warmup = 20, weight_decay = 0.2, clip_grad = 1, seed = 0,
  }
  models[#models + 1] = name
end
for _, t in ipairs(trained) do tune("tree-" .. t, t) end
tune("tree-mixed", mixture(mix))

experiment "text-type-ablation" {
  models = models, datasets = { "tree-seen", "tree-unseen" },
  protocol = zero_shot { text_types = all, templates = "plain" },
}
