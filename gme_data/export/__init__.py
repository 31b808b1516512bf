"""Exports of the workbench's tables for the tools that train and share them.

* :mod:`gme_data.export.hf_dataset`: a Hugging Face ``datasets`` dataset (images embedded as
  ``datasets.Image``), saved with ``save_to_disk`` and as the hub's Parquet layout.
* :mod:`gme_data.export.data_card`: the dataset card (``README.md``), every number from lineage.
* :mod:`gme_data.export.hub`: ``push_to_hub`` of an exported folder (token from the environment only).
* :mod:`gme_data.export.swift_format`: ms-swift's embedding (InfoNCE) JSONL with images beside it.
"""

from gme_data.export.data_card import CardFact, build_card_facts, write_data_card
from gme_data.export.hf_dataset import HFExport, export_hf_dataset, to_dataset_dict
from gme_data.export.hub import push_folder_to_hub
from gme_data.export.swift_format import SwiftExport, export_swift_embedding, swift_rows, swift_train_command

__all__ = [
    "CardFact", "HFExport", "SwiftExport", "build_card_facts", "export_hf_dataset", "export_swift_embedding",
    "push_folder_to_hub", "swift_rows", "swift_train_command", "to_dataset_dict", "write_data_card",
]
