"""The package's version, in a module of its own: modules that report it import it from here, never
from the package (whose names load on first use), so no module imports ``lrsweep`` itself."""

__version__ = "0.1.0"
