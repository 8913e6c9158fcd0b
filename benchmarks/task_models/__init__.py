"""Tiny models of the newer tasks (token classification, question answering, audio classification, semantic
segmentation), built and trained in code on labelled sets made in code (no package ships a small labelled set for
these tasks): what the demo's task table and the tests convert."""
