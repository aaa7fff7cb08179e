"""Point the ROS message wheels' CMake exports at this interpreter's include folders.

The ros-kilted-* wheels were built elsewhere and their `*__rosidl_generator_pyExport.cmake`
files name the builder's Python and numpy include folders, which do not exist here; configuring
a package that depends on them then fails. Rewrites INTERFACE_INCLUDE_DIRECTORIES in place.
Idempotent. Usage: python fix_ros_cmake_exports.py VENV_PREFIX
"""
import re
import sys
import sysconfig
from pathlib import Path

import numpy

LINE = re.compile(r'(INTERFACE_INCLUDE_DIRECTORIES\s+")([^"]*)(")')


def fix(prefix: Path) -> int:
    """Rewrite every export file under prefix/share; return how many files changed."""
    wanted = f"{sysconfig.get_paths()['include']};{numpy.get_include()}"
    changed = 0
    for path in prefix.glob('share/*/cmake/*__rosidl_generator_pyExport.cmake'):
        text = path.read_text()
        new = LINE.sub(lambda m: m.group(1) + wanted + m.group(3)
                       if 'python3' in m.group(2) else m.group(0), text)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: fix_ros_cmake_exports.py VENV_PREFIX')
    print(f'fixed {fix(Path(sys.argv[1]))} export files', file=sys.stderr)
