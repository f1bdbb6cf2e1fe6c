"""One module per model family, each loading its models into a `clipnb.models.loading.ClipModel`.

Every family module has the same parts, which `clipnb.models.loading` calls and nothing else does:
- `load(name, pretrained, device, download_root) -> ClipModel`: the name within the family (the spec
  without its prefix), the weights (a tag, a file, or None), a torch.device, and where downloads go;
- `listing(download_root) -> list[ModelListing]`: the names and weights it knows, and which are on disk;
- `EXAMPLE`: a name to show in messages, and `SUMMARY`: what the family is, in one line.
Adding a family is adding a module here and a line to `clipnb.models.loading.FAMILIES`.
"""
