-- in_guppy / in_dicom say exactly which side a study came from.
select study_uid
from {{ ref('imaging_studies') }}
where not (in_guppy or in_dicom)
   or (in_dicom and n_instances = 0)
   or (not in_dicom and n_instances <> 0)
