"""auDeep as an avbench pipeline: spectrograms → recurrent autoencoder → representations →
cross-validated MLP → export.

Every stage is a command (`avbench features spectrogram | generate | evaluate | export`) and
a library function, and `avbench run` / `avbench sweep` run them all as one trial of a model
whose objective is reconstruction (`audeep`): see avbench.audeep.pipeline.
"""
