"""ament_python package embodied_aif: nodes, models and sim under one import namespace."""
from glob import glob
from pathlib import Path

from setuptools import setup

PACKAGE = 'embodied_aif'

# The top-level folders install as sub-packages of the single namespace `embodied_aif`
# (there is no root __init__.py, so nothing generic like `models` leaks into site-packages).
SUBPACKAGES = {
    'nodes': 'nodes',
    'models': 'models',
    'models.aif': 'models/aif',
    'sim': 'sim',
    'cli': 'cli',
    'bench': 'bench',
}

# Every module in nodes/ not starting with an underscore is a node with a main().
NODES = sorted(p.stem for p in Path('nodes').glob('*.py') if not p.stem.startswith('_'))

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=[f'{PACKAGE}.{name}' for name in SUBPACKAGES],
    package_dir={f'{PACKAGE}.{name}': path for name, path in SUBPACKAGES.items()},
    package_data={f'{PACKAGE}.sim': ['scenarios/*.yaml'], f'{PACKAGE}.models': ['weights/*.pt']},
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.rviz')),
    ],
    install_requires=['setuptools'],
    zip_safe=False,
    maintainer='embodied_aif developers',
    maintainer_email='dev@embodied-aif.org',
    description='Active-inference perception, mapping, navigation and task planning for '
                'mobile manipulators on ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [f'{node} = {PACKAGE}.nodes.{node}:main' for node in NODES]
        + ['embodied-aif = embodied_aif.cli.main:main'],
    },
)
