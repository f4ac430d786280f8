"""SMPL's joint tree and the keypoint sets of the body variant.

Facts about the layouts (names, orders, vertex ids) follow SMPL and I2L-MeshNet's SMPL joint
set, the keypoint set the HandDGP supplement uses for Human3.6M.
"""

from __future__ import annotations

__all__ = ["BODY_BONES", "H36M_JOINT_NAMES", "H36M_ROOT_INDEX", "NUM_KEYPOINTS", "NUM_SMPL_JOINTS",
           "ROOT_INDEX", "SMPL_FACE_VERTEX_IDS", "SMPL_JOINT_NAMES", "SMPL_NUM_VERTS",
           "SMPL_PARENTS"]

#: SMPL's 24 kinematic joints; the parent of joint ``j`` is ``SMPL_PARENTS[j]`` (-1: root).
SMPL_PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17,
                                 18, 19, 20, 21)
NUM_SMPL_JOINTS = len(SMPL_PARENTS)
#: Vertices of the SMPL mesh.
SMPL_NUM_VERTS = 6890
#: The 29 body keypoints: SMPL's 24 joints, then nose, eyes and ears (mesh vertices).
SMPL_JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "L_Hip", "R_Hip", "Torso", "L_Knee", "R_Knee", "Spine", "L_Ankle", "R_Ankle",
    "Chest", "L_Toe", "R_Toe", "Neck", "L_Thorax", "R_Thorax", "Head", "L_Shoulder",
    "R_Shoulder", "L_Elbow", "R_Elbow", "L_Wrist", "R_Wrist", "L_Hand", "R_Hand",
    "Nose", "L_Eye", "R_Eye", "L_Ear", "R_Ear")
NUM_KEYPOINTS = len(SMPL_JOINT_NAMES)
#: The root keypoint (the pelvis): root-relative errors and DGP's translation refer to it.
ROOT_INDEX = 0
#: SMPL mesh vertices of the face keypoints (nose, left eye, right eye, left ear, right ear).
SMPL_FACE_VERTEX_IDS: tuple[int, int, int, int, int] = (331, 2802, 6262, 3489, 3990)
#: Bones of the 29 keypoints, for drawing.
BODY_BONES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 4), (4, 7), (7, 10), (0, 2), (2, 5), (5, 8), (8, 11), (0, 3), (3, 6), (6, 9),
    (9, 14), (14, 17), (17, 19), (19, 21), (21, 23), (9, 13), (13, 16), (16, 18), (18, 20),
    (20, 22), (9, 12), (12, 24), (24, 15), (24, 25), (24, 26), (25, 27), (26, 28))
#: Human3.6M's 17 joints (the benchmark's joint metrics; an H36M joint regressor maps SMPL
#: vertices onto them).
H36M_JOINT_NAMES: tuple[str, ...] = (
    "Pelvis", "R_Hip", "R_Knee", "R_Ankle", "L_Hip", "L_Knee", "L_Ankle", "Torso", "Neck",
    "Nose", "Head_top", "L_Shoulder", "L_Elbow", "L_Wrist", "R_Shoulder", "R_Elbow", "R_Wrist")
H36M_ROOT_INDEX = 0
