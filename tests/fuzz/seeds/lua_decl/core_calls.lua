local c = clade.core
for _, f in ipairs{
  function() return c.store_eval({}) end, function() return c.claim("a", "b") end,
  function() return c.job_done(1) end, function() return c.embed_images(nil) end,
  function() return c.manifest("metadata.csv") end, function() return c.load_features("f.safetensors", 4) end,
  function() return c.check_image("x.jpg") end, function() return c.pyrandom(1):shuffle({1, 2, 3}) end,
  function() return c.model("m", { path = "m" }) end, function() return c.embed_texts(nil, {"a"}) end,
  function() return clade.tensor.from{{1, 2}, {3, 4}}:ridge(clade.tensor.new(2, 1), 0.5) end,
} do pcall(f) end
