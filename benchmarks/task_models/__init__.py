"""Tiny models of the newer tasks (token classification, question answering, audio classification, semantic
segmentation, object detection), built and trained in code on labelled sets made in code (we found no PyPI or Debian
package with a small labelled set for these tasks): what the demo's task table and the tests convert."""
