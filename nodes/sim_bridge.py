"""sim_bridge: the PyBullet simulation on ROS 2 topics, exactly as a real robot's drivers would be.

Publishes (stamped with simulation time, the bridge is the clock source):
  /clock                                   rosgraph_msgs/Clock, every control step
  odom                                     nav_msgs/Odometry (noisy, drifting)
  /tf, /tf_static                          odom->base_link, the robot's links and sensor frames
  joint_states                             sensor_msgs/JointState
  {head,wrist,nav}_camera/color/image_raw  sensor_msgs/Image rgb8
  {head,wrist,nav}_camera/depth/image_rect sensor_msgs/Image 32FC1, metres
  {head,wrist,nav}_camera/camera_info      sensor_msgs/CameraInfo
                                           (nav_camera: wide and small, in the head camera's
                                           housing, for the learned world model)
  scan                                     sensor_msgs/LaserScan
  ground_truth/{objects,robot_pose,room}   evaluation only: no agent node subscribes
  /diagnostics                             real-time factor, step and render timings
  robot_description                        the robot's URDF (latched, for RViz)
Subscribes: cmd_vel (geometry_msgs/Twist), arm_controller/joint_trajectory
(trajectory_msgs/JointTrajectory), gripper/command (std_msgs/Float64, opening width in metres).
Service: reset (embodied_aif_msgs/ResetSim).

Physics runs in its own thread, paced to `real_time_factor` times the wall clock (0 = as fast
as possible). Cameras render only when due and only when someone subscribes.
"""
from __future__ import annotations

import array
import math
import queue
import re
import sys
import threading
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState, LaserScan
from std_msgs.msg import Float64, String
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory

from embodied_aif.models.transforms import yaw_quaternion
from embodied_aif.nodes._common import (
    COMMAND_QOS,
    LATCHED_QOS,
    SENSOR_QOS,
    InputThread,
    Param,
    ParamNode,
    node_main,
)
from embodied_aif.nodes._tf import transform_msg
from embodied_aif.sim.render_worker import RenderWorker, snapshot
from embodied_aif.sim.robot import ARM_JOINTS, robot_urdf
from embodied_aif.sim.sensors import CameraConfig
from embodied_aif.sim.simulation import CAMERAS, Limits, Rates, Simulation
from embodied_aif_msgs.msg import ObjectBelief, ObjectBeliefArray
from embodied_aif_msgs.srv import ResetSim

GROUND_TRUTH_PERIOD_S = 0.5


def stamp(t: float) -> Time:
    """builtin_interfaces/Time of a simulation time in seconds."""
    sec = int(math.floor(t))
    return Time(sec=sec, nanosec=int(round((t - sec) * 1e9)) % 1_000_000_000)


class SimBridge(ParamNode):
    """Steps the simulation and bridges its sensors and actuators to ROS 2."""

    PARAMETERS = (
        Param('scenario', 'default', 'scenario name (sim/scenarios) or YAML path'),
        Param('seed', 0, 'seed of the world generation and odometry noise', low=0, high=2**31 - 1),
        Param('gui', False, 'show the PyBullet GUI window (needs a display)', read_only=True),
        Param('real_time_factor', 1.0, 'pace: sim seconds per wall second (0 = unpaced)',
              low=0.0, high=1000.0),
        Param('physics_rate', 240.0, 'physics steps per sim second, Hz', low=30.0, high=2000.0,
              read_only=True),
        Param('control_rate', 60.0, 'controller rate, Hz (divides physics_rate)', low=1.0,
              high=2000.0, read_only=True),
        Param('head_camera_rate', 10.0, 'head RGB-D rate, Hz (0 = off)', low=0.0, high=60.0,
              read_only=True),
        Param('wrist_camera_rate', 5.0, 'wrist RGB-D rate, Hz (0 = off)', low=0.0, high=60.0,
              read_only=True),
        Param('nav_camera_rate', 5.0, 'navigation camera rate, Hz (0 = off)', low=0.0,
              high=60.0, read_only=True),
        Param('nav_camera_size', 64, 'navigation camera width and height, px', low=16,
              high=1024, read_only=True),
        Param('nav_camera_fov', 90.0, "navigation camera field of view, deg (the world "
              "model's training view)", low=10.0, high=150.0, read_only=True),
        Param('scan_rate', 10.0, 'laser scan rate, Hz (0 = off)', low=0.0, high=100.0,
              read_only=True),
        Param('clock_rate', 60.0, '/clock rate, Hz (at most control_rate: one per control '
              'step; timers of sim-time nodes fire on /clock)', low=1.0, high=1000.0),
        Param('odom_rate', 30.0, 'odometry and /tf rate, Hz', low=1.0, high=500.0),
        Param('joint_state_rate', 30.0, 'joint_states rate, Hz', low=1.0, high=500.0),
        Param('head_camera_width', 320, 'head camera width, px', low=16, high=1920,
              read_only=True),
        Param('head_camera_height', 240, 'head camera height, px', low=12, high=1080,
              read_only=True),
        Param('wrist_camera_width', 160, 'wrist camera width, px', low=16, high=1920,
              read_only=True),
        Param('wrist_camera_height', 120, 'wrist camera height, px', low=12, high=1080,
              read_only=True),
        Param('render_unsubscribed', False, 'render cameras even when nobody subscribes'),
        Param('render_ahead', True, 'with render_process: physics goes on while a frame renders '
              '(published when done, each camera at most one frame behind); false: wait for it '
              '(`embodied-aif run` and `demo --composed` set false: one interpreter lock)'),
        Param('render_process', True, 'render the cameras in a second process (a mirror of the '
              "world): PyBullet's CPU renderer holds the interpreter lock, which starves the "
              "ROS callbacks of nodes composed in this process (off with the GUI)",
              read_only=True),
        Param('max_linear_speed', 1.0, 'base speed limit, m/s', low=0.01, high=5.0,
              read_only=True),
        Param('max_angular_speed', 1.5, 'base turn-rate limit, rad/s', low=0.01, high=10.0,
              read_only=True),
        Param('cmd_vel_timeout', 0.5, 'stop the base this long after the last cmd_vel, s',
              low=0.0, high=10.0, read_only=True),
        Param('odom_noise_linear', 0.02, 'odometry noise: std of distance error per metre',
              low=0.0, high=1.0),
        Param('odom_noise_angular', 0.02, 'odometry noise: std of heading error per radian',
              low=0.0, high=1.0),
        Param('odom_frame', 'odom', 'odometry frame', read_only=True),
        Param('base_frame', 'base_link', 'robot base frame', read_only=True),
        Param('world_frame', 'world', 'frame of the ground truth', read_only=True),
        Param('publish_ground_truth', True, 'publish evaluation ground truth'),
    )

    # composed with other nodes (cli.run.compose), a physics thread that went on while a frame
    # renders would hold the interpreter lock they need: wait for frames there
    COMPOSED_PARAMETERS = {'render_ahead': False}

    def __init__(self, **kwargs):
        super().__init__('sim_bridge', **kwargs)
        self._lock = threading.Lock()
        self._commands: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.sim = self._make_simulation()
        self._renderer = None
        if self.param('render_process') and not self.param('gui'):
            self._renderer = RenderWorker(self.param('scenario'), self.param('seed'),
                                          self.sim.cameras, self.sim.robot_config)
        self._reset_state(self.param('seed'))

        self.pub_clock = self.create_publisher(Clock, '/clock', 10)
        self.pub_odom = self.create_publisher(Odometry, 'odom', 10)
        self.pub_tf = self.create_publisher(TFMessage, '/tf', 100)
        self.pub_tf_static = self.create_publisher(TFMessage, '/tf_static', LATCHED_QOS)
        self.pub_joints = self.create_publisher(JointState, 'joint_states', 10)
        self.pub_scan = self.create_publisher(LaserScan, 'scan', SENSOR_QOS)
        self.pub_cam = {name: (
            self.create_publisher(Image, f'{name}/color/image_raw', SENSOR_QOS),
            self.create_publisher(Image, f'{name}/depth/image_rect', SENSOR_QOS),
            self.create_publisher(CameraInfo, f'{name}/camera_info', SENSOR_QOS))
            for name in CAMERAS}
        self.pub_gt_objects = self.create_publisher(ObjectBeliefArray, 'ground_truth/objects',
                                                    LATCHED_QOS)
        self.pub_gt_pose = self.create_publisher(PoseStamped, 'ground_truth/robot_pose', 10)
        self.pub_gt_room = self.create_publisher(String, 'ground_truth/room', LATCHED_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', 10)

        # commands are taken as they come, as a robot's drivers would: a stop served late by
        # the executor of a busy process lets the base run on
        self.commands = InputThread(self, 'commands')
        self.commands.create_subscription(Twist, 'cmd_vel', self._on_cmd_vel, COMMAND_QOS)
        self.commands.create_subscription(JointTrajectory, 'arm_controller/joint_trajectory',
                                          self._on_trajectory, COMMAND_QOS)
        self.commands.create_subscription(Float64, 'gripper/command', self._on_gripper,
                                          COMMAND_QOS)
        self.create_service(ResetSim, 'reset', self._on_reset)

        self.pub_description = self.create_publisher(String, 'robot_description', LATCHED_QOS)
        # RViz's RobotModel reads the URDF from here; meshes are local files of pybullet_data
        self.pub_description.publish(String(data=re.sub(
            r'filename="/', 'filename="file:///', robot_urdf(self.sim.robot_config))))
        self._publish_static()
        self._thread = threading.Thread(target=self._run, name='sim_bridge_physics', daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ set-up
    def _make_simulation(self) -> Simulation:
        rates = Rates(physics_hz=self.param('physics_rate'), control_hz=self.param('control_rate'),
                      head_camera_hz=self.param('head_camera_rate'),
                      wrist_camera_hz=self.param('wrist_camera_rate'),
                      nav_camera_hz=self.param('nav_camera_rate'),
                      scan_hz=self.param('scan_rate'))
        limits = Limits(max_linear=self.param('max_linear_speed'),
                        max_angular=self.param('max_angular_speed'),
                        cmd_timeout=self.param('cmd_vel_timeout'))
        cameras = {
            'head_camera': CameraConfig('head_camera_optical_frame',
                                        self.param('head_camera_width'),
                                        self.param('head_camera_height'), 60.0),
            'wrist_camera': CameraConfig('wrist_camera_optical_frame',
                                         self.param('wrist_camera_width'),
                                         self.param('wrist_camera_height'), 70.0,
                                         near=0.02, far=3.0),
            'nav_camera': CameraConfig('head_camera_optical_frame', self.param('nav_camera_size'),
                                       self.param('nav_camera_size'),
                                       self.param('nav_camera_fov'))}
        return Simulation(self.param('scenario'), self.param('seed'), rates=rates,
                          limits=limits, cameras=cameras, gui=self.param('gui'))

    def _reset_state(self, seed: int) -> None:
        """Per-episode state of the bridge (odometry, schedules), rebuilt on reset."""
        self._rng = np.random.default_rng(seed + 7919)
        x, y, yaw = self.sim.base_pose()
        self._odom = np.zeros(3)  # odometry starts at the origin of the odom frame
        self._odom_twist = (0.0, 0.0)
        self._last_true = (x, y, yaw)
        self._next = {'clock': 0.0, 'odom': 0.0, 'joints': 0.0, 'truth': 0.0, 'diag': 0.0}
        self._stats = {'steps': 0, 'wall': 0.0, 'render_ms': dict.fromkeys(CAMERAS, 0.0),
                       'renders': dict.fromkeys(CAMERAS, 0),
                       'render_wait_ms': dict.fromkeys(CAMERAS, 0.0)}
        self._in_flight = {}  # camera -> (render ticket, wall time of the request)

    # ------------------------------------------------------------------ callbacks (cheap)
    def _on_cmd_vel(self, msg: Twist) -> None:
        self._commands.put(('base', (msg.linear.x, msg.angular.z)))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            index = [list(msg.joint_names).index(name) for name in ARM_JOINTS]
        except ValueError:
            self.get_logger().warning(
                f'joint_trajectory ignored: joint_names {list(msg.joint_names)} must include '
                f'{list(ARM_JOINTS)}', throttle_duration_sec=2.0)
            return
        points = []
        for k, pt in enumerate(msg.points):
            t = pt.time_from_start.sec + pt.time_from_start.nanosec * 1e-9
            if len(pt.positions) != len(msg.joint_names):
                self.get_logger().warning(f'joint_trajectory ignored: point {k} has '
                                       f'{len(pt.positions)} positions for '
                                       f'{len(msg.joint_names)} joints', throttle_duration_sec=2.0)
                return
            points.append((t, [pt.positions[i] for i in index]))
        self._commands.put(('trajectory', points))

    def _on_gripper(self, msg: Float64) -> None:
        self._commands.put(('gripper', msg.data))

    def _on_reset(self, request: ResetSim.Request, response: ResetSim.Response):
        scenario = request.scenario or None
        with self._lock:
            try:
                self.sim.reset(scenario, int(request.seed))
                if self._renderer is not None:  # frames of the old world are dropped
                    self._renderer.reset(scenario, int(request.seed))
            except (ValueError, OSError) as exc:
                response.success = False
                response.message = f'reset failed, simulation unchanged: {exc}'
                self.get_logger().error(response.message)
                return response
            while not self._commands.empty():
                self._commands.get_nowait()
            self._reset_state(int(request.seed))
            self._publish_static()
        response.success = True
        response.message = (f'reset to scenario {self.sim.scenario.name!r} '
                            f'seed {request.seed}')
        self.get_logger().info(response.message)
        return response

    # ------------------------------------------------------------------ physics thread
    def _apply_commands(self) -> None:
        while True:
            try:
                kind, value = self._commands.get_nowait()
            except queue.Empty:
                return
            if kind == 'base':
                result = self.sim.set_base_velocity(*value)
            elif kind == 'trajectory':
                result = self.sim.set_arm_trajectory(value)
            else:
                result = self.sim.set_gripper(value)
            if not result.accepted or result.clamped:
                self.get_logger().warning(f'{kind} command: {result.message}',
                                       throttle_duration_sec=2.0)

    def _run(self) -> None:
        wall0 = time.perf_counter()
        sim0 = self.sim.time
        while not self._stop.is_set():
            tick = time.perf_counter()
            with self._lock:
                if self.sim.time < sim0:  # a reset happened: restart pacing
                    wall0, sim0 = tick, self.sim.time
                try:
                    self._apply_commands()
                    info = self.sim.step(self.sim.rates.control_every)
                    self._integrate_odometry()
                    self._publish_due(info)
                except Exception as exc:  # noqa: BLE001 - keep simulating, report the fault
                    if not self.context.ok():  # shutting down: nothing left to publish to
                        return
                    self.get_logger().error(f'simulation step failed: {type(exc).__name__}: '
                                            f'{exc}', throttle_duration_sec=5.0)
                    info = self.sim.step(1) if self.sim.client is not None else None
                    if info is None:
                        return
            self._stats['steps'] += self.sim.rates.control_every
            self._stats['wall'] += time.perf_counter() - tick
            rtf = self.param('real_time_factor')
            if rtf > 0:
                ahead = (info.time - sim0) / rtf - (time.perf_counter() - wall0)
                if ahead > 0:
                    self._stop.wait(ahead)
                elif ahead < -1.0:  # far behind (slow machine): do not try to catch up
                    wall0, sim0 = time.perf_counter(), info.time

    def _integrate_odometry(self) -> None:
        x, y, yaw = self.sim.base_pose()
        px, py, pyaw = self._last_true
        self._last_true = (x, y, yaw)
        dyaw = math.atan2(math.sin(yaw - pyaw), math.cos(yaw - pyaw))
        ds = math.hypot(x - px, y - py)
        ds *= 1.0 + self.param('odom_noise_linear') * self._rng.standard_normal()
        dyaw += abs(dyaw) * self.param('odom_noise_angular') * self._rng.standard_normal()
        ox, oy, oyaw = self._odom
        mid = oyaw + dyaw / 2
        self._odom = np.array([ox + ds * math.cos(mid), oy + ds * math.sin(mid),
                               math.atan2(math.sin(oyaw + dyaw), math.cos(oyaw + dyaw))])
        self._odom_twist = self.sim.base_velocity()

    def _due(self, key: str, rate: float, now: float) -> bool:
        if now + 1e-9 < self._next[key]:
            return False
        self._next[key] = max(self._next[key] + 1.0 / rate, now)
        return True

    def _publish_due(self, info) -> None:
        now = info.time
        t = stamp(now)
        if self._due('clock', self.param('clock_rate'), now):
            self.pub_clock.publish(Clock(clock=t))
        if self._renderer is not None:
            self._finish_frames()
        if self._due('odom', self.param('odom_rate'), now):
            self._publish_odometry(t)
        if self._due('joints', self.param('joint_state_rate'), now):
            self._publish_joints(t)
        for name in info.due:
            if name == 'scan':
                self._publish_scan(t)
            elif self.param('render_unsubscribed') or any(
                    pub.get_subscription_count() > 0 for pub in self.pub_cam[name]):
                self._publish_camera(name, t)
        if self.param('publish_ground_truth') and self._due('truth', 1 / GROUND_TRUTH_PERIOD_S,
                                                            now):
            self._publish_ground_truth(t)
        if self._due('diag', 1.0, now):
            self._publish_diagnostics(t, now)

    # ------------------------------------------------------------------ publishers
    def _publish_odometry(self, t: Time) -> None:
        odom_frame, base_frame = self.param('odom_frame'), self.param('base_frame')
        x, y, yaw = self._odom
        q = yaw_quaternion(yaw)
        msg = Odometry()
        msg.header.stamp = t
        msg.header.frame_id = odom_frame
        msg.child_frame_id = base_frame
        pose = msg.pose.pose
        pose.position.x, pose.position.y = float(x), float(y)
        pose.orientation.z, pose.orientation.w = float(q[2]), float(q[3])
        lin, ang = self.param('odom_noise_linear'), self.param('odom_noise_angular')
        cov = np.zeros((6, 6))
        cov[0, 0] = cov[1, 1] = max(lin, 1e-6) ** 2
        cov[2, 2] = cov[3, 3] = cov[4, 4] = 1e-9
        cov[5, 5] = max(ang, 1e-6) ** 2
        msg.pose.covariance = cov.ravel().tolist()
        v, w = self._odom_twist
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = float(v), float(w)
        msg.twist.covariance = cov.ravel().tolist()
        self.pub_odom.publish(msg)
        # one /tf message per tick: odometry and the moving links (fewer, larger messages are
        # far cheaper for every TF listener than many small ones)
        transforms = [transform_msg(odom_frame, base_frame, ((x, y, 0.0), q), t)]
        transforms += [transform_msg(parent, child, (xyz, quat), t)
                       for parent, child, xyz, quat, static in self.sim.frame_transforms()
                       if not static]
        self.pub_tf.publish(TFMessage(transforms=transforms))

    def _publish_static(self) -> None:
        t = stamp(self.sim.time)
        self.pub_tf_static.publish(TFMessage(transforms=[
            transform_msg(parent, child, (xyz, quat), t)
            for parent, child, xyz, quat, static in self.sim.frame_transforms() if static]))

    def _publish_joints(self, t: Time) -> None:
        js = self.sim.joint_states()
        msg = JointState()
        msg.header.stamp = t
        msg.name = list(js.names)
        msg.position = js.positions.astype(float).tolist()
        msg.velocity = js.velocities.astype(float).tolist()
        msg.effort = js.efforts.astype(float).tolist()
        self.pub_joints.publish(msg)

    def _publish_scan(self, t: Time) -> None:
        scan = self.sim.laser_scan()
        msg = LaserScan()
        msg.header.stamp = t
        msg.header.frame_id = scan.frame
        msg.angle_min = float(scan.angle_min)
        msg.angle_increment = float(scan.angle_increment)
        msg.angle_max = float(scan.angle_min + scan.angle_increment * (len(scan.ranges) - 1))
        msg.scan_time = 1.0 / self.param('scan_rate')
        msg.range_min, msg.range_max = float(scan.range_min), float(scan.range_max)
        msg.ranges = array.array("f", scan.ranges.astype(np.float32).tobytes())
        self.pub_scan.publish(msg)

    def _publish_camera(self, name: str, t: Time) -> None:
        """Render camera `name` as the world is now; publish it now or when the worker is done.

        With a render process the frame is requested and physics goes on; the frame is
        published (stamped with the time it shows) once it is back, at the latest when the
        camera's next frame is due, so a camera runs at most one frame behind.
        """
        if self._renderer is None:
            start = time.perf_counter()
            frame = self.sim.render(name)
            self._count_render(name, time.perf_counter() - start, 0.0)
            self._send_frame(name, frame, t)
            return
        self._finish_frame(name, wait=True)
        self._in_flight[name] = (self._renderer.submit(name, snapshot(self.sim)),
                                 time.perf_counter())
        if not self.param('render_ahead'):
            self._finish_frame(name, wait=True)

    def _finish_frames(self) -> None:
        """Publish the frames the render process has finished (does not wait)."""
        if self._in_flight:
            self._renderer.collect()
            for name in list(self._in_flight):
                self._finish_frame(name, wait=False)

    def _finish_frame(self, name: str, wait: bool) -> None:
        if name not in self._in_flight:
            return
        ticket, asked = self._in_flight[name]
        if not (wait or self._renderer.done(ticket)):
            return
        start = time.perf_counter()
        frame = self._renderer.result(ticket)  # waits on a pipe: the lock is free meanwhile
        done = time.perf_counter()
        del self._in_flight[name]
        self._count_render(name, done - asked, done - start)
        self._send_frame(name, frame, stamp(frame.stamp))

    def _count_render(self, name: str, latency_s: float, wait_s: float) -> None:
        self._stats['render_ms'][name] += 1000 * latency_s
        self._stats['render_wait_ms'][name] += 1000 * wait_s
        self._stats['renders'][name] += 1

    def _send_frame(self, name: str, frame, t: Time) -> None:
        h, w = frame.depth.shape
        color = Image(height=h, width=w, encoding='rgb8', is_bigendian=0, step=3 * w)
        color.header.stamp, color.header.frame_id = t, frame.frame
        color.data = frame.rgb.tobytes()
        depth = Image(height=h, width=w, encoding='32FC1', is_bigendian=0, step=4 * w)
        depth.header = color.header
        depth.data = frame.depth.astype('<f4').tobytes()
        info = CameraInfo(height=h, width=w, distortion_model='plumb_bob')
        info.header = color.header
        info.d = [0.0] * 5
        info.k = [float(v) for v in frame.intrinsics.k]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [float(v) for v in frame.intrinsics.p]
        pub_color, pub_depth, pub_info = self.pub_cam[name]
        pub_color.publish(color)
        pub_depth.publish(depth)
        pub_info.publish(info)

    def _publish_ground_truth(self, t: Time) -> None:
        truth = self.sim.ground_truth()
        world = self.param('world_frame')
        objects = ObjectBeliefArray()
        objects.header.stamp, objects.header.frame_id = t, world
        for obj in truth.objects:
            belief = ObjectBelief(id=obj.name, category_names=[obj.category],
                                  category_probs=[1.0], last_seen=t, in_view=False)
            belief.header = objects.header
            pos = belief.pose.pose.position
            pos.x, pos.y, pos.z = (float(v) for v in obj.position)
            ori = belief.pose.pose.orientation
            ori.x, ori.y, ori.z, ori.w = (float(v) for v in obj.orientation)
            objects.objects.append(belief)
        self.pub_gt_objects.publish(objects)
        x, y, yaw = truth.robot_pose
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = t, world
        pose.pose.position.x, pose.pose.position.y = float(x), float(y)
        q = yaw_quaternion(yaw)
        pose.pose.orientation.z, pose.pose.orientation.w = float(q[2]), float(q[3])
        self.pub_gt_pose.publish(pose)
        room = '' if truth.robot_room is None else ','.join(str(v) for v in truth.robot_room)
        self.pub_gt_room.publish(String(data=room))

    def _publish_diagnostics(self, t: Time, now: float) -> None:
        stats = self._stats
        wall = max(stats['wall'], 1e-9)
        values = {'sim_time_s': f'{now:.3f}', 'steps': str(stats['steps']),
                  'unpaced_rtf': f"{stats['steps'] * self.sim.dt / wall:.2f}",
                  'scenario': self.sim.scenario.name}
        for name in CAMERAS:
            n = stats['renders'][name]
            values[f'{name}_render_ms'] = f"{stats['render_ms'][name] / n:.1f}" if n else 'n/a'
            values[f'{name}_render_wait_ms'] = \
                f"{stats['render_wait_ms'][name] / n:.1f}" if n else 'n/a'
        status = DiagnosticStatus(level=DiagnosticStatus.OK, name='sim_bridge',
                                  hardware_id='pybullet', message='running',
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = t
        self.pub_diag.publish(msg)

    def destroy_node(self):
        """Stop the physics thread and disconnect the simulation, then destroy the node.

        Safe on a node whose construction failed half-way (e.g. no display for the GUI).
        """
        if getattr(self, 'commands', None) is not None:
            self.commands.destroy()
        stop, thread = getattr(self, '_stop', None), getattr(self, '_thread', None)
        if stop is not None:
            stop.set()
        if thread is not None and thread.is_alive():
            thread.join(timeout=5.0)
        if getattr(self, 'sim', None) is not None:
            self.sim.close()
        if getattr(self, '_renderer', None) is not None:
            self._renderer.close()
        return super().destroy_node()


NODE_CLASS = SimBridge
main = node_main(SimBridge)

if __name__ == '__main__':
    sys.exit(main())
