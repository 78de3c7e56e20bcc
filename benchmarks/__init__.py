"""Speed and memory of EqualizedAdam against torch.optim.Adam and runtime scaling.

``python -m benchmarks.run`` measures on the CPU; ``python -m benchmarks.cuda``
measures the same cases on a CUDA device.
"""
