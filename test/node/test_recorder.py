"""recorder writes MCAP that an independent ROS 2 MCAP decoder reads back field for field."""
import time

from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from sensor_msgs.msg import Image
from stack_harness import StackHarness, overrides
from std_msgs.msg import String

from embodied_aif.nodes._common import LATCHED_QOS, SENSOR_QOS
from embodied_aif.nodes._mcap import message_definition
from embodied_aif.nodes.recorder import Recorder
from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray


def test_definition_includes_every_dependency_once():
    text = message_definition('embodied_aif_msgs/msg/ObjectBeliefArray')
    for dep in ('embodied_aif_msgs/ObjectBelief', 'std_msgs/Header', 'builtin_interfaces/Time',
                'geometry_msgs/PoseWithCovariance', 'geometry_msgs/Vector3'):
        assert text.count(f'MSG: {dep}\n') == 1, dep


def test_records_topics_readable_by_an_mcap_ros2_decoder(tmp_path):
    path = tmp_path / 'rec.mcap'
    h = StackHarness(lambda context: [Recorder(context=context, parameter_overrides=overrides(
        {'path': str(path), 'discovery_period': 0.1, 'exclude': ['/rosout'],
         'max_rates': ['/camera/slow=2.0']}))], {})
    try:
        pubs = {'chatter': h.probe.create_publisher(String, '/chatter', 10),
                'objects': h.probe.create_publisher(ObjectBeliefArray, '/objects', LATCHED_QOS),
                'image': h.probe.create_publisher(Image, '/camera/image', SENSOR_QOS),
                'slow': h.probe.create_publisher(Image, '/camera/slow', SENSOR_QOS)}
        recorder = h.nodes[0]
        assert h.wait(lambda: len(recorder.subscriptions_by_topic) >= 4, 10)
        time.sleep(0.5)  # let the raw subscriptions match their publishers
        belief = ObjectBelief(id='mug_1', category_names=['mug', 'bowl'],
                              category_probs=[0.75, 0.25], shape_code=[0.5, -1.5])
        belief.pose.pose.position.x = 1.25
        pubs['objects'].publish(ObjectBeliefArray(objects=[belief]))
        image = Image(height=2, width=3, encoding='rgb8', step=9, data=bytes(range(18)))
        for k in range(5):
            pubs['chatter'].publish(String(data=f'hello {k}'))
            pubs['image'].publish(image)
            pubs['slow'].publish(image)
            time.sleep(0.05)
        assert h.wait(lambda: recorder.mcap.counts.get('/chatter', 0) >= 5, 10)
        # 5 frames within ~0.25 s at a 2 Hz limit: the first one only (a slow run: two)
        assert 1 <= recorder.mcap.counts.get('/camera/slow', 0) <= 2, recorder.mcap.counts
    finally:
        h.close()
    decoded, schemas = {}, {}
    with open(path, 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, _, msg in reader.iter_decoded_messages():
            decoded.setdefault(channel.topic, []).append(msg)
            schemas[channel.topic] = (schema.name, schema.encoding, channel.message_encoding)
    assert schemas['/objects'] == ('embodied_aif_msgs/msg/ObjectBeliefArray', 'ros2msg', 'cdr')
    assert [m.data for m in decoded['/chatter']][:5] == [f'hello {k}' for k in range(5)]
    obj = decoded['/objects'][0].objects[0]
    assert obj.id == 'mug_1' and list(obj.category_names) == ['mug', 'bowl']
    assert list(obj.category_probs) == [0.75, 0.25] and obj.pose.pose.position.x == 1.25
    img = decoded['/camera/image'][0]
    assert (img.height, img.width, img.encoding) == (2, 3, 'rgb8')
    assert bytes(img.data) == bytes(range(18))


def test_rate_limits_are_validated():
    from embodied_aif.nodes._common import validate_parameters
    from embodied_aif.nodes.recorder import parse_rates

    assert parse_rates(['', '/a/b=2.5']) == {'/a/b': 2.5}
    for bad in ('a/b=2', '/a/b', '/a/b=0', '/a/b=x'):
        problems = validate_parameters(Recorder.PARAMETERS, {'max_rates': [bad]})
        assert len(problems) == 1 and repr(bad) in problems[0], problems
