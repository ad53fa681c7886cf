"""How a delivery failed decides what happens next."""


class DeliveryError(Exception):
    """Base class. The message names the destination and the reason, never patient data."""


class TransientFailure(DeliveryError):
    """Worth retrying later: connection refused, timeout, peer busy, out of resources."""


class PermanentFailure(DeliveryError):
    """Retrying will not help until an administrator acts: association rejected permanently,
    no accepted presentation context, the peer refuses the dataset."""
