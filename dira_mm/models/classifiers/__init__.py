"""Downstream classifiers on pre-trained encoders."""
from .multilabel_classifier import MultiLabelClassifier
from .pretrained import encoder_weights_from_checkpoint, read_pretrained

__all__ = ['MultiLabelClassifier', 'encoder_weights_from_checkpoint', 'read_pretrained']
