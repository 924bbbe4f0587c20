"""focusnet: absolute focus-quality measurement for fluorescence microscopy.

After Yang et al., "Assessing microscope image focus quality with deep
learning", BMC Bioinformatics 19:77 (2018).

Importing this package is cheap: TensorFlow is imported only by the modules
that run the classifier, when they are used.
"""

__version__ = "0.1.0"
