local T = clade.tensor
local a = T.from{{1, 2}, {3, 4}}
local b = a:matmul(a, true):normalize():add(1):mul(T.new(1, 2, 0.5))
assert(b:topk(1)[1][1] == 2)
local p = protocol "p" { fields = { k = "number" }, run = function(ctx, opts) end }
experiment "e" { models = {}, datasets = {}, protocol = p { k = 1 } }
