"""Training loops (one readable function per task) and the run folders they write."""
from ..models import load_classifier
from .classifier import ClassifierTrainConfig, train_classifier
from .distill import DistillConfig
