/* clade: BioCLIP-style evaluations of vision-language models, described in Lua. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cl_ops.h"

#include "cl_cli.h"

const cl_cmd cl_cmds[] = {
  {"version", "print clade's version and every linked library's", "clade --version | clade version",
   cl_cmd_version},
  {"help", "show help for clade or one command", "clade help [COMMAND]", cl_cmd_help},
  {"run", "run every experiment of a Lua file and store the results",
   "clade run FILE.lua [--db PATH] [--backend cpu|cuda|auto] [--precision fp32] [--decode full|draft]\n"
   "                   [--shard I/N] [--cache PATH] [--lua-memory SIZE] [--lua-budget N] [--strict]\n"
   "                   [--quiet] [--json-log]\n"
   "  Results go to PATH (default results/clade.db, relative to the current folder), one\n"
   "  transaction per finished evaluation, with provenance (git commit, file and model hashes,\n"
   "  backend, precision, decoding). Embeddings are cached by content in cache.db beside it.\n"
   "  Running an unfinished run's file again (same backend, precision and decoding) resumes it;\n"
   "  two processes on one database share the work. First Ctrl-C stops after the evaluation in\n"
   "  flight (the run is marked interrupted), a second aborts. --decode draft: the opt-in fast\n"
   "  decoding (large JPEGs at 1/2-1/8 scale in the DCT domain first, as PIL's Image.draft);\n"
   "  full, the default, is open_clip's. --shard I/N: only the I-th (0 to N-1) of N disjoint\n"
   "  parts of the run's jobs (a stable split balanced by images to encode; the run records I/N\n"
   "  and the plan's hash), for `clade merge`. --cache PATH: the embedding cache elsewhere.\n"
   "  Experiment code is limited: --lua-memory SIZE caps the Lua state (bytes, or K/M/G: 1G;\n"
   "  default half of physical memory), --lua-budget N the Lua instructions of one evaluation\n"
   "  (default 10000000000); the declarations of a file get 200000000. --strict: duplicate\n"
   "  manifest rows and classes with fewer images than the shots asked are errors, not warnings.",
   cl_cmd_run},
  {"check", "check a file's datasets: images found, missing, unreadable (runs no model)",
   "clade check FILE.lua\n  One line per dataset on stdout; exit 1 when any image is missing or unreadable.",
   cl_cmd_check},
  {"classes", "the class names a text type gives a dataset",
   "clade classes FILE.lua --dataset NAME --text-type TYPE\n"
   "  One line per class, in class order: the label, a tab, the text. Reads only the manifest.",
   cl_cmd_classes},
  {"cache", "the embedding cache: size, prune old entries, merge other caches in",
   "clade cache stats|prune [--db PATH] [--older-than DAYS]\n"
   "clade cache merge CACHE.db... [--db PATH | --into CACHE]\n"
   "  The cache lives beside the results database (cache.db). prune drops embeddings unused for\n"
   "  DAYS days (all without --older-than) and hashes of files that no longer exist. merge adds\n"
   "  the embeddings of other caches (say, the shards' node-local ones) that this one lacks, one\n"
   "  transaction each; stdout: the embeddings added from each.",
   cl_cmd_cache},
  {"embed", "embed images and texts (and DNA, with CLIBD) with a checkpoint",
   "clade embed --model PATH [--config JSON|NAME] [--gelu exact|quick] [--images IMAGE...] [--texts FILE]\n"
   "            [--dna FILE]\n"
   "            [--backend cpu|cuda|auto] [--precision P] [--decode full|draft]\n"
   "            --out F.safetensors|F.npy|F.csv [--format safetensors|npy|csv]\n"
   "  PATH: a hub folder (open_clip_config.json + .bin/.safetensors) or a checkpoint file; the\n"
   "  config is a JSON file (bare model_cfg or hub wrapper) or a built-in name (ViT-B-16,\n"
   "  ViT-B-16-quickgelu, ViT-L-14). Writes image_embeddings F32 [N,D], text_embeddings F32 [M,D]\n"
   "  (raw), text_tokens I32 [M,77], logit_scale F32 [] (the stored log). FILE: one text a line.\n"
   "  A CLIBD model (best.pth + a config.json with \"format\": \"clibd\", or PATH = its folder): its\n"
   "  image and text towers' raw outputs under the same names (text_tokens [M,20]), and with\n"
   "  --dna FILE (one sequence a line) dna_embeddings F32 [N,D] and dna_tokens I32 [N,133].\n"
   "  .npy / .csv (by --out's extension, or --format): the one modality embedded, as a bare\n"
   "  [N,D] array, or CSV rows of file_name (text, dna) then the D values.",
   cl_cmd_embed},
  {"predict", "pybioclip's predict: Tree of Life ranks, custom labels, bins, subsets",
   "clade predict IMAGE|DIR... --model PATH [--rank kingdom|phylum|class|order|family|genus|species]\n"
   "              [--k N] [--cls LABELS|FILE] [--bins CSV] [--subset CSV] [--format csv|table|json]\n"
   "              [--output FILE] [--batch-size N] [--backend cpu|cuda|auto] [--precision P]\n"
   "              [--preprocess open_clip|squash] [--embeddings F.safetensors|F.npy|F.csv]\n"
   "              [--label-dtype fp32|fp16]\n"
   "clade predict --list-taxa --model PATH [--label-dtype fp32|fp16]\n"
   "  PATH: a model folder as the hub lays it out; the Tree of Life label set is its\n"
   "  embeddings/txt_emb_species.npy ([D,N], float32 or float16, memory-mapped) and .json.\n"
   "  Columns as pybioclip's: file_name, kingdom .. rank (species: species_epithet, species,\n"
   "  common_name), score; --cls/--bins: file_name, classification, score. --k: default 5 (all\n"
   "  labels or bins with --cls/--bins), clamped to what there is. Ranks above species sum the\n"
   "  species probabilities above 1e-9 by their whole path. --subset: a CSV whose first column is\n"
   "  named after a rank; the softmax is over the kept taxa (with --rank too). --cls: a comma\n"
   "  list, or a file with one label a line; scored with the 80 OpenAI templates averaged.\n"
   "  --bins: CSV class,bin; the classes' probabilities summed per bin. --preprocess: squash\n"
   "  (pybioclip's: RGB, ToTensor, Resize((224,224), antialias) on floats, normalise; the default\n"
   "  for folders with the Tree of Life label set or whose path names bioclip) or open_clip's\n"
   "  (resize, center crop); the\n"
   "  choice is printed on stderr and recorded in json output and --embeddings metadata.\n"
   "  Directories are walked for .jpg/.jpeg/.png; an unreadable image is reported and skipped.\n"
   "  --embeddings: the raw image embeddings [N,D], by extension.\n"
   "  --label-dtype: fp32 (default) scores against txt_emb_species.npy as it is; fp16 against its\n"
   "  float16 variant (half the memory), NumPy's astype(np.float16), made once beside it as\n"
   "  embeddings/txt_emb_species.fp16.npy (remade when the .npy changes) or, when the model folder\n"
   "  is not writable, in $XDG_CACHE_HOME/clade/labels/ (~/.cache without it); with --list-taxa it\n"
   "  only makes it. Recorded on stderr and in json output (label_dtype).\n"
   "  --list-taxa: the label set as CSV (pybioclip's list-tol-taxa).",
   cl_cmd_predict},
  {"synth", "write the embedded sample suite: random-weight models (open_clip, CLIBD) and small datasets",
   "clade synth --out DIR [--seed N] [--classes K] [--per-class M]\n"
   "  Writes DIR/model (open_clip hub folder, RANDOM weights), DIR/clibd (a small CLIBD-shaped\n"
   "  model, RANDOM weights: config.json with \"format\": \"clibd\", model.safetensors in CLIBD's\n"
   "  names, vocab.txt; a ViT image tower with LoRA q/v, a BarcodeBERT DNA tower and a BERT\n"
   "  text tower, 64 wide, 2 layers, 32-d out; experiments/bioscan_retrieval.lua runs on it),\n"
   "  DIR/data/rare_sample (K Rare Species classes, default 8, M JPEGs each, default 6),\n"
   "  DIR/data/plankton_sample (5 PLK_Mini classes, M PNGs each), DIR/data/bioscan_sample\n"
   "  (BIOSCAN-1M style: 12 insect species x M specimens with DNA barcodes and JPEGs, seen/unseen\n"
   "  keys and queries, for retrieval) and DIR/data/tree_sample (36 insect species whose colour,\n"
   "  shape, texture and mark follow order, family, genus and species; split column: train,\n"
   "  test_seen, and test_unseen for 12 held-out species of known genera; for training with\n"
   "  text types). Same seed (default 0), same bytes.",
   cl_cmd_synth},
  {"tokenize", "print the CLIP token ids of texts", "clade tokenize [--file F] [TEXT...]\n"
   "  prints one line per text: its ids from <start_of_text> to <end_of_text>, space separated\n"
   "  --file F  one text per line (F = - reads standard input)", cl_cmd_tokenize},
  {"results", "print a run's results (the latest run by default)",
   "clade results [--db PATH] [--run ID] [--format table|csv|json] [--ci none|bootstrap]\n"
   "              [--ci-resamples N] [--ci-seed S]\n"
   "  --db PATH   the results database (default results/clade.db); never created by reading\n"
   "  --run ID    a run id from `clade log` (default: the latest run)\n"
   "  --format    table (rounded, accuracies in %), csv or json (fractions, %.17g). Columns:\n"
   "              run,experiment,model,dataset,protocol,text_type,shots,trial,metric,value,n,\n"
   "              query,key,split,rank\n"
   "              with trial 0..n-1 per trial and `all` for the aggregate; query, key (modalities),\n"
   "              split and rank are a retrieval's axes, empty otherwise (the table shows them\n"
   "              in one `retrieval` column when the run has any), then\n"
   "              ci_low,ci_high,ci_resamples,ci_seed,tie (json adds eval, and model_hash and\n"
   "              config_hash: the checkpoint's and its config file's hashes, or null)\n"
   "  --ci        bootstrap (default): every top-k accuracy whose per-example predictions are\n"
   "              stored gets its 95% interval (percentile bootstrap over the examples; for the\n"
   "              aggregate of several trials, over the trials and then each drawn trial's\n"
   "              examples), N resamples (default 1000) from Python's random.seed(S) (default\n"
   "              0); and per dataset, protocol and shots the cells not significantly worse than\n"
   "              the best are marked tied (tie: best, tied or worse; one-sided paired bootstrap\n"
   "              test against the best, Holm-corrected at 0.05, as biobench's report). none:\n"
   "              no intervals. Also top3/top5 (from each prediction's hit, schema 8 on), and\n"
   "              a retrieval's micro_top<k>/macro_top<k> (schema 9 on: resampling the queries,\n"
   "              a resample's macro over the classes it drew; earlier retrievals say why they\n"
   "              have none: json ci_note). Intervals are kept in the database (when a run\n"
   "              completes, or computed here first) and reused while the settings match",
   cl_cmd_results},
  {"predictions", "print a run's per-example predictions",
   "clade predictions [--db PATH] [--run ID] [--format csv|json]\n"
   "  csv columns: model,dataset,protocol,text_type,shots,trial,filepath,label,prediction,\n"
   "  query,key,split,rank,retrieved (a retrieval: label and prediction at the rank, the\n"
   "  retrieved key rows as a JSON array of 0-based manifest rows, best first)\n"
   "  (trial `all` when the protocol has no trials); json adds experiment, example, eval,\n"
   "  correct and hit (the true label's rank among the ranked classes kept, or null)",
   cl_cmd_predictions},
  {"export", "write a run's per-example predictions with their embeddings' provenance as CSV",
   "clade export [--run ID] [--db PATH] [--out FILE.csv]\n"
   "  One CSV (RFC 4180, libcsv; for pandas.read_csv) of every per-example prediction of the\n"
   "  run (default: the latest), to FILE (written atomically) or stdout. Columns:\n"
   "  run,eval,experiment,model,dataset,protocol,text_type,shots,trial,example,filepath,label,\n"
   "  prediction,correct,hit,query,key,split,rank,retrieved, then where the embeddings came from:\n"
   "  model_hash (the checkpoint's content hash), backend,device,precision,decode, the\n"
   "  clade_version and git_commit,git_dirty of the run, run_started, and config_hash (the\n"
   "  model's config file beside its checkpoint; empty before schema 11). trial is empty for\n"
   "  protocols without trials; example is the 0-based manifest row; correct is 0 or 1; hit the\n"
   "  true label's rank among the ranked classes kept (zero-shot: top 5; empty beyond).",
   cl_cmd_export},
  {"log", "list the recorded runs with their provenance",
   "clade log [--db PATH] [--run ID] [-n N] [--format table|json]\n"
   "  table: one line per run, oldest first: id, file, commit, dirty|clean, status, started,\n"
   "  wall time, evaluations, backend/precision (and /draft for draft decoding; `-` where\n"
   "  unknown). -n N: the last N runs only.\n"
   "  json: a list of objects (id, file, commit, dirty, status, wall_seconds, images_encoded,\n"
   "  texts_encoded, images_cached, texts_cached, backend, precision, decode, shard_index,\n"
   "  shard_count, plan_hash, slurm_job, ...). A shard shows [shard I/N] after its file, a run\n"
   "  merged from shards [merged N shards], and status incomplete while a shard is missing or\n"
   "  unfinished, with a line under it naming those shards (json: incomplete_shards).\n"
   "  Then (table) the unfinished trainings' work folders in trained/ beside the database\n"
   "  (<key>.partial: a run of the same train declaration resumes one; one whose declaration\n"
   "  changed never is): each with its size, its training job, 'stale' when the same name from\n"
   "  the same file was trained since under another declaration, and the rm command that\n"
   "  removes it (none while a job trains it). Nothing is removed: trained/ is shared by every\n"
   "  file recording into the database, and a declaration changed back resumes its folder.",
   cl_cmd_log},
  {"preprocess", "open_clip's exact image preprocessing into a safetensors file",
   "clade preprocess --out F.safetensors [--size S] [--mean M,M,M] [--std S,S,S]\n"
   "                 [--decode full|draft | --augment SEED | --box L,T,W,H | --transform squash] IMAGE...\n"
   "  Writes tensor `pixels`, F32 [N,3,S,S] (S = 224 by default), normalised as open_clip's\n"
   "  preprocess_val (OpenAI mean/std unless given). JPEG and PNG, told apart by content.\n"
   "  --decode draft: large JPEGs decoded at 1/2-1/8 scale first, as PIL's\n"
   "  Image.draft('RGB', (S, S)) (the opt-in fast mode; full, the default, is open_clip's).\n"
   "  --augment SEED: open_clip's training transform instead (RandomResizedCrop, scale 0.9-1,\n"
   "  ratio 3/4-4/3, bicubic; image k's box drawn from Python's random seeded SEED + k);\n"
   "  --box: its crop + resize with this box for every image. Boxes in the metadata.\n"
   "  --transform squash: pybioclip's BioCLIP transform instead (RGB, ToTensor, Resize((S,S),\n"
   "  antialias=True) bilinear on floats, no crop, Normalize), as clade predict's default.",
   cl_cmd_preprocess},
  {"compare", "the regression gate: compare two runs cell by cell, tested against noise",
   "clade compare BASE HEAD [--db PATH] [--min-delta D] [--alpha A] [--metric M]\n"
   "              [--format table|markdown|json] [--ci none|bootstrap] [--ci-resamples N]\n"
   "              [--ci-seed S]\n"
   "  BASE, HEAD: a run id (digits) or a git revision (HEAD~1, a branch, a hash), resolved in the\n"
   "  current folder's repository to the latest complete run with results at that commit. Cells\n"
   "  are matched by experiment, model, dataset, protocol, text type, shots and the retrieval\n"
   "  axes (query, key, split, rank); per cell: its headline metric, top1 (micro_top1 for a\n"
   "  retrieval cell; --metric M: another for every cell, e.g. top5, macro_top5) of both, the\n"
   "  delta and a verdict. regressed/improved: |delta| >= D (default 0.005 = 0.5 points) and a\n"
   "  paired test rejects at A (default 0.05): exact McNemar on per-example outcomes (top1,\n"
   "  micro_top1: correct; top<k>, micro_top<k>: the label within the first k, from schema 8\n"
   "  (9 for retrieval); pooled over trials for few-shot); macro_top<k>: a paired bootstrap of\n"
   "  the class average over the queries (--ci-resamples, --ci-seed); the json's test says\n"
   "  which ran; else a paired t-test over trial accuracies, else untested.\n"
   "  same: inside D or the noise. added/removed: cells on one side only (not a\n"
   "  failure). Runs computed on other backends or precisions compare with a warning naming\n"
   "  both.\n"
   "  Exit 0: nothing regressed significantly; 1: something did; 2: a side cannot be found or\n"
   "  another error. markdown suits a CI comment; json: a list of objects (experiment, model,\n"
   "  dataset, protocol, text_type, shots, query, key, split, rank, base, head, delta, p_value,\n"
   "  verdict, test, ..., base_ci, head_ci). base and head carry the metric's 95% bootstrap\n"
   "  interval as `clade results` computes it (--ci: see there).",
   cl_cmd_compare},
  {"report", "write a self-contained HTML report: tables and SVG plots of a run",
   "clade report --out FILE.html [--db PATH] [--run ID] [--ci none|bootstrap] [--ci-resamples N]\n"
   "             [--ci-seed S]\n"
   "  One file, no network: tables per experiment of the run (default: the latest run with\n"
   "  results) and plots drawn by clade: zero-shot top1 per dataset and model, accuracy vs shots\n"
   "  (mean +- std over trials), text type x model heatmap (zero-shot top1, mean over datasets),\n"
   "  and top1 of each cell over the complete runs, labelled by commit (at most 12 cells: those\n"
   "  that moved most). A plot with no data is omitted with a note. Top-1 accuracies carry\n"
   "  their 95% bootstrap interval and the best of each dataset, protocol and shots with those\n"
   "  tied with it are in bold, as `clade results` computes them (--ci: see there); the\n"
   "  zero-shot and shots plots draw the intervals as error bars, and so does a retrieval\n"
   "  plot (micro top1 per query->key, split and rank) for a run with retrieval cells.",
   cl_cmd_report},
  {"bench", "measure encoder speed on this machine and record it in the results database",
   "clade bench [--db PATH] [--model PATH [--config JSON|NAME] | --random NAME | --random-vitb16]\n"
   "            [--seed N]\n"
   "            [--batch 1,8,32] [--images DIR] [--json] [--no-db] [--profile] [--only LIST]\n"
   "            [--backend cpu|cuda] [--precision fp32|tf32|bf16|fp16] [--decode full|draft]\n"
   "  Measures the image tower (images/s at each batch, random pixels), the text tower\n"
   "  (prompts/s on the Rare Species prompts: the 81 bioclip81 templates x --text-classes N\n"
   "  classes spread over the 400, default 8; 0 = all 32400), end to end (JPEG decode +\n"
   "  preprocess + encode through the pipeline, no cache; --images DIR or --n-images N\n"
   "  generated photo-like JPEGs, default 96), the machine's fp32 GEMM peak and the share\n"
   "  of it each run reaches, the ceiling of its FMA units (register-only loop: no fp32\n"
   "  GEMM can pass it), and peak RSS. Medians over --repeat R (default 3) timed reps\n"
   "  of at least --min-seconds S (default 2) after a warm-up. Without --model: ViT-B/16\n"
   "  with deterministic random weights; --random NAME another built-in architecture\n"
   "  (ViT-B-16, ViT-B-16-quickgelu, ViT-L-14 = BioCLIP 2's, ViT-L-14-quickgelu), its\n"
   "  FLOPs and parameters counted from its config. --only gemm,image,text,e2e picks measures;\n"
   "  --profile prints time per backend op on stderr. Results go to PATH (default\n"
   "  results/clade.db) as a run with one bench row per measure, unless --no-db.\n"
   "  With a --precision other than fp32, also the error it costs: the largest relative\n"
   "  distance of 8 image embeddings from the same model's fp32 ones (error_vs_fp32).\n"
   "  --decode draft: end to end with the opt-in draft decoding, and what it costs: the\n"
   "  largest relative distance of the set's embeddings from full decoding's (draft_error).\n"
   "  --make-images DIR only writes the --n-images generated JPEGs to DIR (for a reference\n"
   "  run on the same files) and exits.",
   cl_cmd_bench},
  {"merge", "fold shard databases (clade run --shard I/N) into one run",
   "clade merge SHARD.db... --into PATH [--quiet]\n"
   "  Folds every shard run of one plan found in the SHARD databases into one run of PATH\n"
   "  (created when missing) with all results, predictions, supports, provenance and training\n"
   "  jobs with their steps (one record per trained model: shards that each trained it, or took\n"
   "  it from a shared trained/ cache, hold the same content key and weights), in one\n"
   "  transaction (on any error PATH is left as it was). Merging again adds nothing; the same\n"
   "  evaluation recorded with different values is an error naming it; shards of different\n"
   "  plans, files, backends or precisions are refused. A shard missing (a SHARD path that does\n"
   "  not exist counts as missing) or unfinished leaves the merged run incomplete and names the\n"
   "  shards to rerun. stdout: run, status (complete|incomplete), shards, added,\n"
   "  already_merged, rerun (indices), trainings_added, trainings_already_merged.\n"
   "  Exit 0: complete; 3: incomplete; 1: an error.",
   cl_cmd_merge},
  {"slurm", "run a file as a Slurm job array of shards, merged by a dependent job",
   "clade slurm FILE.lua --array N [--partition P] [--gpus-per-task G] [--cpus-per-task C]\n"
   "            [--time T] [--mem M] [--account A] [--dir DIR] [--into PATH] [--cache PATH]\n"
   "            [--backend B] [--precision P] [--decode D] [--submit]\n"
   "clade slurm [FILE.lua] --status | --resubmit [--dir DIR]   (FILE.lua or --dir)\n"
   "  Writes DIR/array.sbatch (task I of --array=0-(N-1) runs `clade run FILE --shard I/N\n"
   "  --db DIR/shards/I.db`) and DIR/merge.sbatch (`clade merge DIR/shards/*.db --into PATH`,\n"
   "  submitted with --dependency=afterany on the array), prints them, and with --submit\n"
   "  submits both with sbatch (job ids in DIR/jobs.tsv). DIR defaults to\n"
   "  slurm/<file name without .lua>, PATH to results/clade.db, both made absolute so the\n"
   "  scripts run from any folder. The embedding cache is on the node's local disk\n"
   "  ($CLADE_CACHE_DIR, else $TMPDIR, else /tmp: clade-cache/cache.db) unless --cache PATH.\n"
   "  --status: per shard its jobs done / planned and state (done, running, pending, failed,\n"
   "  missing) from its database and squeue/sacct, and the whole array's progress.\n"
   "  --resubmit: submits again only the shards that are neither done nor queued or running,\n"
   "  with a new merge job after them. Exit 0; --status: 0 when every shard is done, 3 if not.",
   cl_cmd_slurm},
  {"grad", "the CLIP loss and every parameter's gradient on image-text pairs",
   "clade grad --model PATH [--config JSON|NAME] --images IMAGE... --texts FILE --out G.safetensors\n"
   "  One forward and backward of open_clip's ClipLoss on the pairs image i <-> line i of FILE\n"
   "  (open_clip's evaluation transform; fp32 on the CPU). Writes `loss` F32 [] and\n"
   "  `grad.<open_clip parameter name>` (F32, the parameter's shape) for every parameter.",
   cl_cmd_grad},
  {"train", "fine-tune a CLIP contrastively on image-text pairs (AdamW) into an open_clip hub folder",
   "clade train --model PATH [--config JSON|NAME] --images IMAGE... --texts FILE --steps N --lr X\n"
   "            [--weight-decay W] [--warmup S] [--batch-size B] [--clip-grad C]\n"
   "            [--freeze PREFIX]... [--projections-only] [--beta1 B] [--beta2 B] [--eps E]\n"
   "            [--json-log] [--save-every N] [--resume] --out DIR\n"
   "  Pairs image i <-> line i of FILE, open_clip's evaluation transform (no augmentation), in\n"
   "  the given order: step s uses the (s mod N/B)-th run of B consecutive pairs (B = all pairs\n"
   "  by default, at least 2; a last partial batch is never used). As open_clip trains: ClipLoss,\n"
   "  AdamW with betas (0.9, 0.98) and eps 1e-6 unless given, weight decay W (default 0.2) on\n"
   "  parameters with 2+ dims whose name has no bn/ln/bias/logit_scale, cosine_lr with S warmup\n"
   "  steps (default 0), clip_grad_norm_ to C when given, logit_scale clamped to [0, ln 100]\n"
   "  after each step.\n"
   "  --freeze PREFIX (repeatable): parameters whose name starts with PREFIX get no update, no\n"
   "  decay and stay out of the clipping norm. --projections-only: train only visual.proj,\n"
   "  text_projection and logit_scale. --json-log: one JSON object per step on stdout\n"
   "  ({\"step\": 0-based, \"loss\": before the update, \"lr\": ...}; \"grad_norm\" when clipping).\n"
   "  Writes DIR/open_clip_model.safetensors + DIR/open_clip_config.json (the hub layout\n"
   "  open_clip and clade load) and DIR/optimizer.safetensors (exp_avg.*, exp_avg_sq.*, step;\n"
   "  hyperparameters in its metadata), each file atomically.\n"
   "  --save-every N: every N steps, the whole state (weights, optimizer moments, step) goes to\n"
   "  DIR/.state atomically; --resume continues from the latest one (refused when it was made\n"
   "  with other inputs), and ends with the same bytes as a training never stopped.",
   cl_cmd_train},
  {NULL, NULL, NULL, NULL},
};

void cl_cli_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("clade: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int cl_cli_option(const char *cmd, int argc, char **argv, int *i, const char *const *names, int n,
                  const char **val) {
  const char *a = argv[*i];
  for (int k = 0; k < n; k++) {
    size_t len = strlen(names[k]);
    if (strncmp(a, names[k], len) != 0) continue;
    if (a[len] == '=') {
      *val = a + len + 1;
      return k;
    }
    if (a[len] != 0) continue;
    if (*i + 1 >= argc) {
      cl_cli_fail("%s: option %s needs a value", cmd, a);
      return -2;
    }
    *val = argv[++*i];
    return k;
  }
  return -1;
}

void cl_cli_run_how(const char *backend, const char *precision, const char *decode, char *buf, size_t n) {
  const int other = decode && *decode && strcmp(decode, "full") != 0;
  snprintf(buf, n, "%s/%s%s%s", backend && *backend ? backend : "-", precision && *precision ? precision : "-",
           other ? "/" : "", other ? decode : "");
}

int cl_cli_usage(const char *cmd) {
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, cmd) == 0) {
      fprintf(stderr, "usage: %s\n", c->usage);
      return 2;
    }
  return 2;
}

static void overview(FILE *f) {
  fprintf(f, "clade %s: BioCLIP-style evaluations of vision-language models, described in Lua.\n\n"
             "usage: clade COMMAND [ARGS]\n\ncommands:\n", CLADE_VERSION);
  for (const cl_cmd *c = cl_cmds; c->name; c++) fprintf(f, "  %-12s %s\n", c->name, c->summary);
  fprintf(f, "\n`clade help COMMAND` shows a command's options.\n");
}

int cl_cmd_help(int argc, char **argv) {
  if (argc < 2) {
    overview(stdout);
    return 0;
  }
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, argv[1]) == 0) {
      printf("%s\n\nusage: %s\n", c->summary, c->usage);
      return 0;
    }
  cl_cli_fail("no command '%s' (see `clade help`)", argv[1]);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    overview(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) cmd = "version";
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) cmd = "help";
  /* OpenBLAS and libgomp read their settings when the process starts: for commands that run
   * encoders, set them (fast kernels for this CPU, passive OpenMP waits) and start again. */
  if ((!strcmp(cmd, "run") || !strcmp(cmd, "embed") || !strcmp(cmd, "predict") || !strcmp(cmd, "bench") ||
       !strcmp(cmd, "version") ||
       !strcmp(cmd, "grad") || !strcmp(cmd, "train")) &&
      cl_backend_cpu_tune_env())
    execv("/proc/self/exe", argv);
  for (const cl_cmd *c = cl_cmds; c->name; c++)
    if (strcmp(c->name, cmd) == 0) return c->run(argc - 1, argv + 1);
  cl_cli_fail("unknown command '%s' (see `clade help`)", cmd);
  return 2;
}
