"""Ternarizers (pure tensor functions with their gradient rules) and their configs. No modules, no files."""
from .configs import (FLOAT, METHODS, STTNConfig, TTNConfig, TWNConfig, config_from_dict, config_to_dict, make_config,
                      method_name, ternarizer_options)
from .functional import (REL_THRESHOLDS, sttn_binary_weights, sttn_params, sttn_scale, sttn_split, sttn_ternarize,
                         ternary_activation, ttn_params, ttn_ternarize, twn_params, twn_ternarize)
from .packing import pack_2bit, pack_trits, packed_bytes, unpack_2bit, unpack_trits
