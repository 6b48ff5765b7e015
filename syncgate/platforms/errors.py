"""What the HubSpot and Salesforce clients' errors share."""


class PlatformError(Exception):
    """A call to HubSpot or Salesforce failed; `message` holds no credentials and is safe to store.

    `transient`: the same call can succeed later. `outage`: the call failed as a whole because
    the platform is down or unreachable, out of API allowance, or refusing our credentials, so
    every other call would fail the same way; the circuit breaker counts these.
    """

    transient = False

    def __init__(
        self, message: str, retry_after: float | None = None, *, outage: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.outage = outage
