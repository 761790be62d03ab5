from .classify import evaluate, topk_correct
