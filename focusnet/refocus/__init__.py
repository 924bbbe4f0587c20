"""Refocusing: restoring out-of-focus images with a small U-Net trained on the physical simulator.

:func:`refocus_image` refocuses one image where the focus classifier says it
can be restored and measures the result; :mod:`.training` trains a model on
simulator pairs, :mod:`.validate` measures one on real through-focus stacks
beside Richardson-Lucy deconvolution.
"""
