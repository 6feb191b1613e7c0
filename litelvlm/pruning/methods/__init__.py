"""The CLIP-side methods, one module each; each declares its :class:`~litelvlm.method.Method`, named in
:mod:`litelvlm.methods`."""
