"""The one exception root of the project; each room's errors derive from it."""


class CityloopError(Exception):
    """Base of every error cityloop raises on purpose."""


class ConfigurationError(CityloopError):
    """Settings or files that cannot work."""


class BrokerUnavailable(CityloopError):
    """The Kafka broker could not be reached or did not acknowledge in time."""
