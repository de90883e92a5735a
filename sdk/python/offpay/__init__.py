"""offpay for Python: a CustomerWallet and a MerchantTill for offline payments.

Everything comes from the module UniFFI generates from the Rust SDK (offpay-sdk); see
sdk/README.md for the walkthrough, the error model and threading.
"""

from .offpay import *  # noqa: F401,F403
from .offpay import OffpayError, SignerError, HolderSigner  # noqa: F401
