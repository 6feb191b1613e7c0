"""VideoGLaMM's SAM 2 video branch (``inference_video_branch``), its orchestration transcribed for tests only
(never imported by the library).

Source: mbzuai-oryx/VideoGLaMM @6b15b1e, ``VideoGLaMM/model/VideoGLaMM.py`` L832-876 (the SAM 2 part of
``inference_video_branch``) and VideoGLaMM's modified SAM 2, ``VideoGLaMM/model/segment_anything_2/sam2/``:
``sam2_video_predictor.py`` (``add_new_text`` L416-495, ``_get_orig_video_res_output`` L498-518,
``_consolidate_temp_output_across_obj`` L520-636, ``propagate_in_video_preflight`` L675-743,
``propagate_in_video`` L745-827, ``_get_image_feature`` L889-919, ``_run_single_frame_inference`` L921-988,
``_run_memory_encoder`` L990-1017, ``_get_maskmem_pos_enc`` L1019-1042), ``modeling/sam2_base.py``
(``_forward_sam_heads`` L251-411, ``_prepare_memory_conditioned_features`` L495-664, ``_encode_new_memory``
L666-704, ``track_step`` L706-803, ``_use_multimask`` L805-813), ``modeling/sam/prompt_encoder.py``
(``_embed_points`` L79-100, ``forward`` L148-189), with the settings of ``sam2_hiera_l.yaml`` and
``build_sam2_video_predictor`` (``build_sam.py`` L43-78). The statements that decide what runs on which frame
are kept (comments and docstrings dropped; state dicts flattened to what one video with prompts on frame 0
only reaches: no clicks, no masks, no reverse pass, no offloading, ``clear_non_cond_mem_around_input`` False,
``max_cond_frames_in_attn`` -1, ``memory_temporal_stride_for_eval`` 1, ``add_tpos_enc_to_obj_ptrs`` False,
``non_overlap_masks(_for_mem_enc)`` False, ``fill_hole_area`` a no-op there). The networks they call -- image
encoder, mask decoder, memory attention, memory encoder, object-pointer MLP -- are transformers' modules of
the same ``Sam2VideoModel`` (``net``), called where the official code calls its own; ``.cuda()`` is dropped,
and in a reduced dtype the float32 masks enter the memory encoder cast to the weights' dtype (the official
script runs under ``torch.cuda.amp.autocast``).
"""
# ruff: noqa

import torch
import torch.nn.functional as F

NO_OBJ_SCORE = -1024.0  # sam2_base.py L18


class Official:
    """``SAM2VideoPredictor`` of ``sam2_hiera_l.yaml`` over transformers' networks (module docstring)."""

    def __init__(self, net):
        self.net = net
        c = net.config
        self.image_size = c.image_size
        self.num_maskmem = c.num_maskmem
        self.hidden_dim = net.hidden_dim
        self.mem_dim = net.mem_dim
        self.max_obj_ptrs_in_encoder = c.max_object_pointers_in_encoder
        self.sigmoid_scale_for_mem_enc, self.sigmoid_bias_for_mem_enc = 20.0, -10.0
        self.binarize_mask_from_pts_for_mem_enc = True       # build_sam.py L66-67
        self.multimask_output_in_sam, self.multimask_output_for_tracking = True, True
        self.multimask_min_pt_num, self.multimask_max_pt_num = 0, 1
        self.dtype = net.no_memory_embedding.dtype

    # sam2_video_predictor.py L109-180 (init_state_from_tensor): the parts a frame-0 prompt reads
    def init_state_from_tensor(self, images, video_height, video_width):
        return {"images": images, "num_frames": len(images), "video_height": video_height,
                "video_width": video_width, "cached_features": {}, "constants": {},
                "obj_ids": [], "output_dict": {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
                "temp_output_dict_per_obj": {}, "frames_already_tracked": {}}

    # sam2_video_predictor.py L889-919; forward_image + _prepare_backbone_features (sam2_base.py L465-493)
    # are transformers' get_image_features (conv_s0 / conv_s1 applied, flattened HW x B x C)
    def _get_image_feature(self, inference_state, frame_idx, batch_size):
        image, backbone_out = inference_state["cached_features"].get(frame_idx, (None, None))
        if backbone_out is None:
            image = inference_state["images"][frame_idx].to(self.dtype).unsqueeze(0)
            backbone_out = self.net.get_image_features(image, return_dict=True)
            inference_state["cached_features"] = {frame_idx: (image, backbone_out)}
        vision_feats = [x.expand(-1, batch_size, -1) for x in backbone_out.fpn_hidden_states]
        vision_pos_embeds = [x.expand(-1, batch_size, -1) for x in backbone_out.fpn_position_encoding]
        feat_sizes = [tuple(s) for s in self.net.backbone_feature_sizes]
        return image, None, vision_feats, vision_pos_embeds, feat_sizes

    # sam2_video_predictor.py L416-495
    def add_new_text(self, inference_state, frame_idx, obj_id, text):
        obj_idx = len(inference_state["obj_ids"])
        inference_state["obj_ids"].append(obj_id)
        inference_state["temp_output_dict_per_obj"][obj_idx] = {"cond_frame_outputs": {},
                                                                "non_cond_frame_outputs": {}}
        is_init_cond_frame = frame_idx not in inference_state["frames_already_tracked"]
        reverse = False
        obj_temp_output_dict = inference_state["temp_output_dict_per_obj"][obj_idx]
        is_cond = is_init_cond_frame
        storage_key = "cond_frame_outputs" if is_cond else "non_cond_frame_outputs"
        current_out, _ = self._run_single_frame_inference(
            inference_state=inference_state,
            output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
            frame_idx=frame_idx, batch_size=1, is_init_cond_frame=is_init_cond_frame, point_inputs=None,
            reverse=reverse, run_mem_encoder=False, text_inputs=text)
        obj_temp_output_dict[storage_key][frame_idx] = current_out

    # sam2_video_predictor.py L520-636, with run_mem_encoder=True (the preflight's call)
    def _consolidate_temp_output_across_obj(self, inference_state, frame_idx, is_cond):
        batch_size = len(inference_state["obj_ids"])
        storage_key = "cond_frame_outputs" if is_cond else "non_cond_frame_outputs"
        consolidated_H = consolidated_W = self.image_size // 4
        consolidated_out = {
            "maskmem_features": None, "maskmem_pos_enc": None,
            "pred_masks": torch
            .full(size=(batch_size, 1, consolidated_H, consolidated_W), fill_value=NO_OBJ_SCORE,
                                     dtype=torch.float32),
            "obj_ptr": torch
            .full(size=(batch_size, self.hidden_dim), fill_value=NO_OBJ_SCORE, dtype=torch.float32),
        }
        for obj_idx in range(batch_size):
            out = inference_state["temp_output_dict_per_obj"][obj_idx][storage_key].get(frame_idx, None)
            obj_mask = out["pred_masks"]
            consolidated_out["pred_masks"][obj_idx: obj_idx + 1] = obj_mask
            consolidated_out["obj_ptr"][obj_idx: obj_idx + 1] = out["obj_ptr"]
        high_res_masks = F.interpolate(consolidated_out["pred_masks"],
                                       size=(self.image_size, self.image_size),
                                       mode="bilinear", align_corners=False)
        maskmem_features, maskmem_pos_enc = self._run_memory_encoder(
            inference_state=inference_state, frame_idx=frame_idx, batch_size=batch_size,
            high_res_masks=high_res_masks, is_mask_from_pts=True)
        consolidated_out["maskmem_features"] = maskmem_features
        consolidated_out["maskmem_pos_enc"] = maskmem_pos_enc
        return consolidated_out

    # sam2_video_predictor.py L675-743 (the conditioning outputs of frame 0 only)
    def propagate_in_video_preflight(self, inference_state):
        output_dict = inference_state["output_dict"]
        temp_frame_inds = set()
        for obj_temp_output_dict in inference_state["temp_output_dict_per_obj"].values():
            temp_frame_inds.update(obj_temp_output_dict["cond_frame_outputs"].keys())
        for frame_idx in temp_frame_inds:
            output_dict["cond_frame_outputs"][frame_idx] = self._consolidate_temp_output_across_obj(
                inference_state, frame_idx, is_cond=True)

    # sam2_video_predictor.py L745-827
    def propagate_in_video(self, inference_state):
        self.propagate_in_video_preflight(inference_state)
        output_dict = inference_state["output_dict"]
        num_frames = inference_state["num_frames"]
        batch_size = len(inference_state["obj_ids"])
        start_frame_idx = min(output_dict["cond_frame_outputs"])
        end_frame_idx = min(start_frame_idx + num_frames, num_frames - 1)
        for frame_idx in range(start_frame_idx, end_frame_idx + 1):
            if frame_idx in output_dict["cond_frame_outputs"]:
                current_out = output_dict["cond_frame_outputs"][frame_idx]
                pred_masks = current_out["pred_masks"]
            else:
                current_out, pred_masks = self._run_single_frame_inference(
                    inference_state=inference_state, output_dict=output_dict, frame_idx=frame_idx,
                    batch_size=batch_size, is_init_cond_frame=False, point_inputs=None, reverse=False,
                    run_mem_encoder=True)
                output_dict["non_cond_frame_outputs"][frame_idx] = current_out
            inference_state["frames_already_tracked"][frame_idx] = {"reverse": False}
            yield frame_idx, inference_state["obj_ids"], self._get_orig_video_res_output(
                inference_state, pred_masks)

    # sam2_video_predictor.py L498-518
    def _get_orig_video_res_output(self, inference_state, any_res_masks):
        video_H, video_W = inference_state["video_height"], inference_state["video_width"]
        return F.interpolate(any_res_masks, size=(video_H, video_W), mode="bilinear", align_corners=False)

    # sam2_video_predictor.py L921-988
    def _run_single_frame_inference(self, inference_state, output_dict, frame_idx, batch_size,
                                    is_init_cond_frame,
                                    point_inputs, reverse, run_mem_encoder, text_inputs=None):
        _, _, current_vision_feats, current_vision_pos_embeds, feat_sizes = self._get_image_feature(
            inference_state, frame_idx, batch_size)
        current_out = self.track_step(
            frame_idx=frame_idx, is_init_cond_frame=is_init_cond_frame,
            current_vision_feats=current_vision_feats,
            current_vision_pos_embeds=current_vision_pos_embeds, feat_sizes=feat_sizes,
            point_inputs=point_inputs,
            output_dict=output_dict, num_frames=inference_state["num_frames"], track_in_reverse=reverse,
            run_mem_encoder=run_mem_encoder, text_inputs=text_inputs)
        maskmem_features = current_out["maskmem_features"]
        if maskmem_features is not None:
            maskmem_features = maskmem_features.to(torch.bfloat16)
        pred_masks_gpu = current_out["pred_masks"]
        pred_masks = pred_masks_gpu
        maskmem_pos_enc = self._get_maskmem_pos_enc(inference_state, current_out)
        compact_current_out = {"maskmem_features": maskmem_features, "maskmem_pos_enc": maskmem_pos_enc,
                               "pred_masks": pred_masks, "obj_ptr": current_out["obj_ptr"]}
        return compact_current_out, pred_masks_gpu

    # sam2_video_predictor.py L990-1017
    def _run_memory_encoder(self, inference_state, frame_idx, batch_size, high_res_masks, is_mask_from_pts):
        _, _, current_vision_feats, _, feat_sizes = self._get_image_feature(inference_state, frame_idx,
                                                                            batch_size)
        maskmem_features, maskmem_pos_enc = self._encode_new_memory(
            current_vision_feats=current_vision_feats, feat_sizes=feat_sizes,
            pred_masks_high_res=high_res_masks, is_mask_from_pts=is_mask_from_pts)
        maskmem_features = maskmem_features.to(torch.bfloat16)
        maskmem_pos_enc = self._get_maskmem_pos_enc(inference_state, {"maskmem_pos_enc": maskmem_pos_enc})
        return maskmem_features, maskmem_pos_enc

    # sam2_video_predictor.py L1019-1042
    def _get_maskmem_pos_enc(self, inference_state, current_out):
        model_constants = inference_state["constants"]
        out_maskmem_pos_enc = current_out["maskmem_pos_enc"]
        if out_maskmem_pos_enc is not None:
            if "maskmem_pos_enc" not in model_constants:
                maskmem_pos_enc = [x[0:1].clone() for x in out_maskmem_pos_enc]
                model_constants["maskmem_pos_enc"] = maskmem_pos_enc
            else:
                maskmem_pos_enc = model_constants["maskmem_pos_enc"]
            batch_size = out_maskmem_pos_enc[0].size(0)
            return [x.expand(batch_size, -1, -1, -1) for x in maskmem_pos_enc]
        return None

    # sam2_base.py L805-813
    def _use_multimask(self, is_init_cond_frame, point_inputs):
        num_pts = 0 if point_inputs is None else point_inputs["point_labels"].size(1)
        return (self.multimask_output_in_sam and (is_init_cond_frame or self.multimask_output_for_tracking)
                and (self.multimask_min_pt_num <= num_pts <= self.multimask_max_pt_num))

    # sam2_base.py L706-803
    def track_step(self, frame_idx, is_init_cond_frame, current_vision_feats, current_vision_pos_embeds,
                   feat_sizes,
                   point_inputs, output_dict, num_frames, track_in_reverse=False, run_mem_encoder=True,
                   text_inputs=None):
        current_out = {"point_inputs": point_inputs, "mask_inputs": None}
        high_res_features = [x.permute(1, 2, 0).view(x.size(1), x.size(2), *s)
                             for x, s in zip(current_vision_feats[:-1], feat_sizes[:-1])]
        pix_feat_with_mem = self._prepare_memory_conditioned_features(
            frame_idx=frame_idx, is_init_cond_frame=is_init_cond_frame,
            current_vision_feats=current_vision_feats[-1:],
            current_vision_pos_embeds=current_vision_pos_embeds[-1:], feat_sizes=feat_sizes[-1:],
            output_dict=output_dict, num_frames=num_frames, track_in_reverse=track_in_reverse)
        multimask_output = self._use_multimask(is_init_cond_frame, point_inputs)
        _, _, _, low_res_masks, high_res_masks, obj_ptr, _ = self._forward_sam_heads(
            backbone_features=pix_feat_with_mem, point_inputs=point_inputs,
            high_res_features=high_res_features, multimask_output=multimask_output, text_inputs=text_inputs)
        current_out["pred_masks"] = low_res_masks
        current_out["pred_masks_high_res"] = high_res_masks
        current_out["obj_ptr"] = obj_ptr
        if run_mem_encoder and self.num_maskmem > 0:
            maskmem_features, maskmem_pos_enc = self._encode_new_memory(
                current_vision_feats=current_vision_feats, feat_sizes=feat_sizes,
                pred_masks_high_res=high_res_masks, is_mask_from_pts=(point_inputs is not None))
            current_out["maskmem_features"] = maskmem_features
            current_out["maskmem_pos_enc"] = maskmem_pos_enc
        else:
            current_out["maskmem_features"] = None
            current_out["maskmem_pos_enc"] = None
        return current_out

    # prompt_encoder.py L79-100 (_embed_points) and L148-189 (forward), VideoGLaMM's text_embeds appended
    def _prompt_encoder(self, points, text_embeds):
        pe = self.net.prompt_encoder
        coords, labels = points
        coords = coords + 0.5
        padding_point = torch.zeros((coords.shape[0], 1, 2), device=coords.device)
        padding_label = -torch.ones((labels.shape[0], 1), device=labels.device)
        coords = torch.cat([coords, padding_point], dim=1)
        labels = torch.cat([labels, padding_label], dim=1)
        point_embedding = pe.shared_embedding(coords[:, None], (self.image_size, self.image_size))[:, 0]
        point_embedding = point_embedding.to(self.dtype)
        point_embedding[labels == -1] = 0.0
        point_embedding[labels == -1] += pe.not_a_point_embed.weight
        sparse_embeddings = torch.empty((coords.shape[0], 0, pe.hidden_size), dtype=self.dtype)
        sparse_embeddings = torch.cat([sparse_embeddings, point_embedding], dim=1)
        if text_embeds is not None:
            sparse_embeddings = torch.cat([sparse_embeddings, text_embeds.to(self.dtype)], dim=1)
        h, w = pe.image_embedding_size
        dense_embeddings = pe.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(coords.shape[0], -1, h, w)
        return sparse_embeddings, dense_embeddings

    # sam2_base.py L251-411 (no mask input; pred_obj_scores, fixed_no_obj_ptr,
    # use_multimask_token_for_obj_ptr)
    def _forward_sam_heads(self, backbone_features, point_inputs=None, high_res_features=None,
                           multimask_output=False, text_inputs=None):
        B = backbone_features.size(0)
        sam_point_coords = torch.zeros(B, 1, 2)
        sam_point_labels = -torch.ones(B, 1, dtype=torch.int32)
        sparse_embeddings, dense_embeddings = self._prompt_encoder((sam_point_coords, sam_point_labels),
                                                                   text_inputs)
        pe = self.net.get_image_wide_positional_embeddings().repeat(B, 1, 1, 1)
        low_res_multimasks, ious, sam_output_tokens, object_score_logits = [
            x[:, 0] for x in self.net.mask_decoder(
                image_embeddings=backbone_features, image_positional_embeddings=pe,
                sparse_prompt_embeddings=sparse_embeddings[:, None], dense_prompt_embeddings=dense_embeddings,
                multimask_output=multimask_output, high_resolution_features=high_res_features)]
        is_obj_appearing = object_score_logits > 0
        low_res_multimasks = torch.where(is_obj_appearing[:, None, None], low_res_multimasks, NO_OBJ_SCORE)
        low_res_multimasks = low_res_multimasks.float()
        high_res_multimasks = F.interpolate(low_res_multimasks, size=(self.image_size, self.image_size),
                                            mode="bilinear", align_corners=False)
        sam_output_token = sam_output_tokens[:, 0]
        if multimask_output:
            best_iou_inds = torch.argmax(ious, dim=-1)
            batch_inds = torch.arange(B)
            low_res_masks = low_res_multimasks[batch_inds, best_iou_inds].unsqueeze(1)
            high_res_masks = high_res_multimasks[batch_inds, best_iou_inds].unsqueeze(1)
            if sam_output_tokens.size(1) > 1:
                sam_output_token = sam_output_tokens[batch_inds, best_iou_inds]
        else:
            low_res_masks, high_res_masks = low_res_multimasks, high_res_multimasks
        obj_ptr = self.net.object_pointer_proj(sam_output_token)
        lambda_is_obj_appearing = is_obj_appearing.float()
        obj_ptr = lambda_is_obj_appearing * obj_ptr
        obj_ptr = obj_ptr + (1 - lambda_is_obj_appearing) * self.net.no_object_pointer
        return (low_res_multimasks, high_res_multimasks, ious, low_res_masks, high_res_masks, obj_ptr,
                object_score_logits)

    # sam2_base.py L495-664
    def _prepare_memory_conditioned_features(self, frame_idx, is_init_cond_frame, current_vision_feats,
                                             current_vision_pos_embeds, feat_sizes, output_dict, num_frames,
                                             track_in_reverse=False):
        B = current_vision_feats[-1].size(1)
        C = self.hidden_dim
        H, W = feat_sizes[-1]
        if is_init_cond_frame:  # directly_add_no_mem_embed
            pix_feat_with_mem = current_vision_feats[-1] + self.net.no_memory_embedding
            return pix_feat_with_mem.permute(1, 2, 0).view(B, C, H, W)
        to_cat_memory, to_cat_memory_pos_embed = [], []
        selected_cond_outputs = output_dict["cond_frame_outputs"]      # max_cond_frames_in_attn = -1
        t_pos_and_prevs = [(0, out) for out in selected_cond_outputs.values()]
        for t_pos in range(1, self.num_maskmem):
            t_rel = self.num_maskmem - t_pos
            if t_rel == 1:
                prev_frame_idx = frame_idx - t_rel
            else:
                prev_frame_idx = ((frame_idx - 2) // 1) * 1
                prev_frame_idx = prev_frame_idx - (t_rel - 2) * 1
            out = output_dict["non_cond_frame_outputs"].get(prev_frame_idx, None)
            t_pos_and_prevs.append((t_pos, out))
        for t_pos, prev in t_pos_and_prevs:
            if prev is None:
                continue
            feats = prev["maskmem_features"]
            to_cat_memory.append(feats.flatten(2).permute(2, 0, 1))
            maskmem_enc = prev["maskmem_pos_enc"][-1]
            maskmem_enc = maskmem_enc.flatten(2).permute(2, 0, 1)
            maskmem_enc = maskmem_enc + self.net.memory_temporal_positional_encoding[
                self.num_maskmem - t_pos - 1]
            to_cat_memory_pos_embed.append(maskmem_enc)
        max_obj_ptrs_in_encoder = min(num_frames, self.max_obj_ptrs_in_encoder)
        ptr_cond_outputs = {t: out for t, out in selected_cond_outputs.items() if t <= frame_idx}
        pos_and_ptrs = [(abs(frame_idx - t), out["obj_ptr"]) for t, out in ptr_cond_outputs.items()]
        for t_diff in range(1, max_obj_ptrs_in_encoder):
            t = frame_idx - t_diff
            if t < 0 or (num_frames is not None and t >= num_frames):
                break
            out = output_dict["non_cond_frame_outputs"].get(t, None)
            if out is not None:
                pos_and_ptrs.append((t_diff, out["obj_ptr"]))
        num_obj_ptr_tokens = 0
        if len(pos_and_ptrs) > 0:
            pos_list, ptrs_list = zip(*pos_and_ptrs)
            obj_ptrs = torch.stack(ptrs_list, dim=0)
            obj_pos = obj_ptrs.new_zeros(len(pos_list), B, self.mem_dim)   # add_tpos_enc_to_obj_ptrs: false
            if self.mem_dim < C:
                obj_ptrs = obj_ptrs.reshape(-1, B, C // self.mem_dim, self.mem_dim)
                obj_ptrs = obj_ptrs.permute(0, 2, 1, 3).flatten(0, 1)
                obj_pos = obj_pos.repeat_interleave(C // self.mem_dim, dim=0)
            to_cat_memory.append(obj_ptrs)
            to_cat_memory_pos_embed.append(obj_pos)
            num_obj_ptr_tokens = obj_ptrs.shape[0]
        memory = torch.cat(to_cat_memory, dim=0)
        memory_pos_embed = torch.cat(to_cat_memory_pos_embed, dim=0)
        pix_feat_with_mem = self.net.memory_attention(
            current_vision_features=current_vision_feats[-1],
            current_vision_position_embeddings=current_vision_pos_embeds[-1],
            memory=memory.to(self.dtype), memory_posision_embeddings=memory_pos_embed.to(self.dtype),
            num_object_pointer_tokens=num_obj_ptr_tokens)
        return pix_feat_with_mem[0].transpose(1, 2).reshape(B, C, H, W)   # (HW)BC => BCHW

    # sam2_base.py L666-704
    def _encode_new_memory(self, current_vision_feats, feat_sizes, pred_masks_high_res, is_mask_from_pts):
        B = current_vision_feats[-1].size(1)
        C = self.hidden_dim
        H, W = feat_sizes[-1]
        pix_feat = current_vision_feats[-1].permute(1, 2, 0).view(B, C, H, W)
        binarize = self.binarize_mask_from_pts_for_mem_enc and is_mask_from_pts
        if binarize:
            mask_for_mem = (pred_masks_high_res > 0).float()
        else:
            mask_for_mem = torch.sigmoid(pred_masks_high_res)
        mask_for_mem = mask_for_mem * self.sigmoid_scale_for_mem_enc
        mask_for_mem = mask_for_mem + self.sigmoid_bias_for_mem_enc
        maskmem_features, maskmem_pos_enc = self.net.memory_encoder(pix_feat, mask_for_mem.to(self.dtype))
        return maskmem_features, [maskmem_pos_enc]


# VideoGLaMM.py L832-876 (one sample: its [SEG] embeddings feat (S, 256))
def inference_video_branch_masks(net, images_for_sam, video_height, video_width, feat):
    """{frame: {obj_id: (H, W) float32 logits}} (the official keeps ``> 0.0`` of them, L871-876)."""
    visual_model = Official(net)
    feat = feat.unsqueeze(1)
    inference_state = visual_model.init_state_from_tensor(images_for_sam, video_height, video_width)
    ann_frame_idx = 0
    for ann_obj_id in range(0, feat.shape[0]):
        visual_model.add_new_text(inference_state=inference_state, frame_idx=ann_frame_idx, obj_id=ann_obj_id,
                                  text=feat[ann_obj_id].unsqueeze(0))
    video_segments = {}
    for out_frame_idx, out_obj_ids, out_mask_logits in visual_model.propagate_in_video(inference_state):
        video_segments[out_frame_idx] = {out_obj_id: out_mask_logits[i][0] for i,
                                         out_obj_id in enumerate(out_obj_ids)}
    return video_segments
